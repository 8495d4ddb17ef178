/* core/replica.c - the threaded replica (spec §11): a thin runner around hs_core and
 * hs_sync_server.
 *
 *   poller      Network.recv -> inbox (progress, advertisements, sync responses)
 *                            -> sync queue (sync requests)
 *   algorithm   waits on the inbox until the core's deadline, then hs_core_step
 *   sync server waits on the sync queue until the next advertisement, answers from snapshots
 *   event bus   (only with handlers or log_events) runs handlers, then the log line
 *
 * Every queue is bounded. A full inbox or sync queue drops the arriving message, a full event
 * queue the arriving event; each drop is counted (hs_replica_get_stats). Dropping a progress
 * message costs at most liveness in one view, never safety; consensus never waits for a slow
 * handler or a slow peer.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bt.h"
#include "hotstuff/block_tree.h"
#include "hotstuff/core.h"
#include "hotstuff/crypto.h"
#include "hotstuff/log.h"
#include "hotstuff/replica.h"

#define POLL_INTERVAL_MS 50
#define MAX_WAIT_MS 1000 /* wake at least this often, whatever the deadline */
#define INBOX_MAX_ORIGINS 2048
#define INBOX_SELF_RESERVE 256

typedef struct handler_slot {
    hs_event_handler fn;
    void *ctx;
} handler_slot;

struct hs_replica_spec_builder {
    bool has_app, has_net, has_kv, has_cfg;
    hs_app app;
    hs_network net;
    hs_kv_store kv;
    hs_config cfg;
    handler_slot handlers[HS_EV_COUNT];
};

struct hs_replica_spec {
    hs_app app;
    hs_network net;
    hs_kv_store kv;
    hs_config cfg;
    handler_slot handlers[HS_EV_COUNT];
};

/* ---- bounded FIFO of heap nodes, one mutex + condvar each ---- */

typedef struct qnode {
    struct qnode *next;
    hs_key origin;
    union {
        hs_msg msg;
        hs_event ev;
    } u;
} qnode;

typedef struct queue {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    qnode *head, *tail;
    uint32_t count, cap;
    atomic_uint_fast64_t dropped;
} queue;

static void queue_init(queue *q, uint32_t cap) {
    pthread_mutex_init(&q->mu, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&q->cv, &attr);
    pthread_condattr_destroy(&attr);
    q->head = q->tail = NULL;
    q->count = 0;
    q->cap = cap;
    atomic_init(&q->dropped, 0);
}

/* Caller holds q->mu and has checked the bound. */
static void queue_append_locked(queue *q, qnode *n) {
    n->next = NULL;
    if (q->tail) q->tail->next = n;
    else q->head = n;
    q->tail = n;
    q->count++;
    pthread_cond_signal(&q->cv);
}

/* Appends n unless full; returns whether it was taken. */
static bool queue_push(queue *q, qnode *n) {
    pthread_mutex_lock(&q->mu);
    bool ok = q->count < q->cap;
    if (ok) queue_append_locked(q, n);
    pthread_mutex_unlock(&q->mu);
    if (!ok) atomic_fetch_add(&q->dropped, 1);
    return ok;
}

/* Caller holds q->mu. */
static qnode *queue_pop_locked(queue *q) {
    qnode *n = q->head;
    if (!n) return NULL;
    q->head = n->next;
    if (!q->head) q->tail = NULL;
    q->count--;
    return n;
}

static void queue_wake(queue *q) {
    pthread_mutex_lock(&q->mu);
    pthread_cond_broadcast(&q->cv);
    pthread_mutex_unlock(&q->mu);
}

static uint64_t mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Waits on q->cv (mu held) until monotonic time `until` or a signal. */
static void queue_wait_until(queue *q, uint64_t until) {
    uint64_t now = mono_ms();
    if (until <= now) return;
    if (until - now > MAX_WAIT_MS) until = now + MAX_WAIT_MS;
    struct timespec ts = {(time_t)(until / 1000), (long)(until % 1000) * 1000000L};
    pthread_cond_timedwait(&q->cv, &q->mu, &ts);
}

/* ---- the replica ---- */

struct hs_replica {
    hs_replica_spec spec;
    hs_core *core;
    hs_sync_server *server;
    bool has_bus;
    atomic_bool stop;
    pthread_t poller, algorithm, sync_server, bus;
    bool started_poller, started_algorithm, started_sync_server, started_bus;
    queue inbox, sync_queue, events;
    struct {
        bool used;
        hs_key key;
        uint32_t count;
    } origins[INBOX_MAX_ORIGINS]; /* messages each origin holds in the inbox; under inbox.mu */
    atomic_uint_fast64_t view;
    atomic_bool syncing;
    atomic_bool halted;
    atomic_int halt_status;
};

static void free_msg_nodes(queue *q) {
    qnode *n;
    while ((n = queue_pop_locked(q))) {
        hs_msg_free(&n->u.msg);
        free(n);
    }
}

static void free_event_nodes(queue *q) {
    qnode *n;
    while ((n = queue_pop_locked(q))) {
        hs_event_free(&n->u.ev);
        free(n);
    }
}

/* Events an application may build state from: a handler that misses one would silently
 * diverge. They may exceed the event queue's capacity up to COMMIT_EVENT_FACTOR times it;
 * only a handler stuck for that long loses them (counted, and logged as an error). */
#define COMMIT_EVENT_FACTOR 16

static bool is_commit_path(hs_event_type t) {
    return t == HS_EV_COMMIT_BLOCK || t == HS_EV_PRUNE_BLOCK || t == HS_EV_UPDATE_VALIDATOR_SET;
}

/* env.emit: runs on the algorithm or sync server thread; copies the event into the queue. */
static void emit_to_bus(void *ctx, const hs_event *e) {
    hs_replica *r = ctx;
    qnode *n = calloc(1, sizeof *n);
    if (!n || hs_event_copy(&n->u.ev, e) != HS_OK) {
        free(n);
        atomic_fetch_add(&r->events.dropped, 1);
        hs_log(HS_LOG_ERROR, "replica", "out of memory: %s event dropped",
               hs_event_type_name(e->type));
        return;
    }
    queue *q = &r->events;
    uint64_t cap = q->cap;
    if (is_commit_path(e->type)) cap *= COMMIT_EVENT_FACTOR;
    pthread_mutex_lock(&q->mu);
    bool ok = q->count < cap;
    if (ok) queue_append_locked(q, n);
    pthread_mutex_unlock(&q->mu);
    if (!ok) {
        uint64_t dropped = atomic_fetch_add(&q->dropped, 1) + 1;
        if (is_commit_path(e->type))
            hs_log(HS_LOG_ERROR, "replica", "event handlers stalled: %s event dropped (%llu "
                   "events dropped so far)", hs_event_type_name(e->type),
                   (unsigned long long)dropped);
        hs_event_free(&n->u.ev);
        free(n);
    }
}

static void *bus_main(void *arg) {
    hs_replica *r = arg;
    char line[1024];
    pthread_mutex_lock(&r->events.mu);
    while (!atomic_load(&r->stop)) {
        qnode *n = queue_pop_locked(&r->events);
        if (!n) {
            pthread_cond_wait(&r->events.cv, &r->events.mu);
            continue;
        }
        pthread_mutex_unlock(&r->events.mu);
        const handler_slot *h = &r->spec.handlers[n->u.ev.type];
        if (h->fn) h->fn(h->ctx, &n->u.ev);
        if (r->spec.cfg.log_events) {
            hs_event_format(&n->u.ev, line, sizeof line);
            hs_log(HS_LOG_INFO, "event", "%s", line);
        }
        hs_event_free(&n->u.ev);
        free(n);
        pthread_mutex_lock(&r->events.mu);
    }
    pthread_mutex_unlock(&r->events.mu);
    return NULL;
}

/* ---- the algorithm inbox: fair among senders ----
 * One peer (a Byzantine one, or a listener replaying traffic) must not be able to fill the
 * inbox and crowd out the others. Each origin may hold at most a quarter of the inbox, tracked
 * in a small open-addressing table keyed by the origin (entries are never removed; the table
 * only grows to the number of distinct senders, bounded by INBOX_MAX_ORIGINS, after which new
 * origins share the last-resort global bound). The replica's own messages (its proposals,
 * votes to itself, AdvanceView loop-backs) bypass the quota and get a reserve above the global
 * bound: dropping those could park the replica in an epoch-change view. */

static uint32_t *origin_slot(hs_replica *r, const hs_key *k) {
    uint64_t h;
    memcpy(&h, k->b, sizeof h); /* keys are uniformly random: any 8 bytes hash well */
    for (uint32_t i = 0; i < INBOX_MAX_ORIGINS; i++) {
        uint32_t j = (uint32_t)((h + i) % INBOX_MAX_ORIGINS);
        if (!r->origins[j].used) {
            r->origins[j].used = true;
            r->origins[j].key = *k;
            return &r->origins[j].count;
        }
        if (memcmp(r->origins[j].key.b, k->b, HS_KEY_LEN) == 0) return &r->origins[j].count;
    }
    return NULL;
}

static bool inbox_push(hs_replica *r, qnode *n) {
    queue *q = &r->inbox;
    bool self = memcmp(n->origin.b, r->spec.cfg.me.public_key.b, HS_KEY_LEN) == 0;
    uint32_t quota = q->cap / 4 > 16 ? q->cap / 4 : 16;
    pthread_mutex_lock(&q->mu);
    uint32_t *held = self ? NULL : origin_slot(r, &n->origin);
    bool ok = self ? q->count < q->cap + INBOX_SELF_RESERVE
                   : q->count < q->cap && (!held || *held < quota);
    if (ok) {
        if (held) (*held)++;
        queue_append_locked(q, n);
    }
    pthread_mutex_unlock(&q->mu);
    if (!ok) atomic_fetch_add(&q->dropped, 1);
    return ok;
}

/* Caller holds r->inbox.mu. */
static qnode *inbox_pop_locked(hs_replica *r) {
    qnode *n = queue_pop_locked(&r->inbox);
    if (n && memcmp(n->origin.b, r->spec.cfg.me.public_key.b, HS_KEY_LEN) != 0) {
        uint32_t *held = origin_slot(r, &n->origin);
        if (held && *held > 0) (*held)--;
    }
    return n;
}

static void *poller_main(void *arg) {
    hs_replica *r = arg;
    hs_network *net = &r->spec.net;
    while (!atomic_load(&r->stop)) {
        qnode *n = calloc(1, sizeof *n);
        if (!n) {
            struct timespec ts = {0, POLL_INTERVAL_MS * 1000000L};
            nanosleep(&ts, NULL);
            continue;
        }
        hs_status st = net->recv(net->self, POLL_INTERVAL_MS, &n->origin, &n->u.msg);
        if (st != HS_OK) {
            free(n);
            if (st == HS_ERR_CLOSED) break;
            if (st != HS_TIMEOUT) { /* a failing network must not make this thread spin */
                struct timespec ts = {0, POLL_INTERVAL_MS * 1000000L};
                nanosleep(&ts, NULL);
            }
            continue;
        }
        bool taken;
        if (n->u.msg.type == HS_MSG_SYNC_REQUEST) taken = queue_push(&r->sync_queue, n);
        else taken = inbox_push(r, n);
        if (!taken) {
            hs_msg_free(&n->u.msg);
            free(n);
        }
    }
    return NULL;
}

static void *algorithm_main(void *arg) {
    hs_replica *r = arg;
    while (!atomic_load(&r->stop)) {
        pthread_mutex_lock(&r->inbox.mu);
        /* The core is touched only by this thread; reading its deadline under the inbox lock
         * just orders the wait. */
        while (!r->inbox.head && !atomic_load(&r->stop) && mono_ms() < hs_core_deadline(r->core))
            queue_wait_until(&r->inbox, hs_core_deadline(r->core));
        qnode *n = inbox_pop_locked(r);
        pthread_mutex_unlock(&r->inbox.mu);
        if (atomic_load(&r->stop)) {
            if (n) {
                hs_msg_free(&n->u.msg);
                free(n);
            }
            break;
        }
        hs_status st = hs_core_step(r->core, mono_ms(), n ? &n->origin : NULL, n ? &n->u.msg : NULL);
        free(n); /* the step consumed the message */
        atomic_store(&r->view, hs_core_view(r->core));
        atomic_store(&r->syncing, hs_core_is_syncing(r->core));
        if (st != HS_OK) {
            /* The store failed under us: stop acting rather than act on unknown state. */
            hs_log(HS_LOG_ERROR, "replica", "algorithm thread halted: %s", hs_status_str(st));
            atomic_store(&r->halt_status, st);
            atomic_store(&r->halted, true);
            break;
        }
    }
    return NULL;
}

static void *sync_server_main(void *arg) {
    hs_replica *r = arg;
    while (!atomic_load(&r->stop)) {
        pthread_mutex_lock(&r->sync_queue.mu);
        while (!r->sync_queue.head && !atomic_load(&r->stop) &&
               mono_ms() < hs_sync_server_deadline(r->server))
            queue_wait_until(&r->sync_queue, hs_sync_server_deadline(r->server));
        qnode *n = queue_pop_locked(&r->sync_queue);
        pthread_mutex_unlock(&r->sync_queue.mu);
        if (n) {
            if (!atomic_load(&r->stop))
                hs_sync_server_handle(r->server, mono_ms(), &n->origin, &n->u.msg.u.sync_request);
            hs_msg_free(&n->u.msg);
            free(n);
        }
        if (!atomic_load(&r->stop)) hs_sync_server_tick(r->server, mono_ms());
    }
    return NULL;
}

/* ---- builder ---- */

hs_replica_spec_builder *hs_replica_spec_builder_new(void) {
    return calloc(1, sizeof(hs_replica_spec_builder));
}

void hs_replica_spec_builder_free(hs_replica_spec_builder *b) { free(b); }

void hs_spec_app(hs_replica_spec_builder *b, const hs_app *app) {
    b->app = *app;
    b->has_app = true;
}

void hs_spec_network(hs_replica_spec_builder *b, const hs_network *net) {
    b->net = *net;
    b->has_net = true;
}

void hs_spec_kv_store(hs_replica_spec_builder *b, const hs_kv_store *kv) {
    b->kv = *kv;
    b->has_kv = true;
}

void hs_spec_configuration(hs_replica_spec_builder *b, const hs_config *cfg) {
    b->cfg = *cfg;
    b->has_cfg = true;
}

void hs_spec_on(hs_replica_spec_builder *b, hs_event_type type, hs_event_handler fn, void *ctx) {
    if ((unsigned)type >= HS_EV_COUNT) return;
    b->handlers[type].fn = fn;
    b->handlers[type].ctx = ctx;
}

static hs_status spec_error(char *err, size_t errlen, const char *msg) {
    if (err && errlen) snprintf(err, errlen, "replica spec: %s", msg);
    return HS_ERR_INVALID;
}

hs_status hs_spec_build(const hs_replica_spec_builder *b, hs_replica_spec **out, char *err,
                        size_t errlen) {
    *out = NULL;
    if (!b->has_app) return spec_error(err, errlen, "missing required `app`");
    if (!b->has_net) return spec_error(err, errlen, "missing required `network`");
    if (!b->has_kv) return spec_error(err, errlen, "missing required `kv_store`");
    if (!b->has_cfg) return spec_error(err, errlen, "missing required `configuration`");
    if (!b->app.produce_block || !b->app.validate_block || !b->app.validate_block_for_sync)
        return spec_error(err, errlen, "`app` lacks one of its three functions");
    if (!b->net.broadcast || !b->net.send || !b->net.recv || !b->net.init_validator_set ||
        !b->net.update_validator_set)
        return spec_error(err, errlen, "`network` lacks one of its functions");
    if (!b->kv.get || !b->kv.write || !b->kv.snapshot || !b->kv.release_snapshot)
        return spec_error(err, errlen, "`kv_store` lacks one of its functions");
    hs_status st = hs_config_validate(&b->cfg, err, errlen);
    if (st != HS_OK) return st;
    hs_replica_spec *s = calloc(1, sizeof *s);
    if (!s) return HS_ERR_NOMEM;
    s->app = b->app;
    s->net = b->net;
    s->kv = b->kv;
    s->cfg = b->cfg;
    memcpy(s->handlers, b->handlers, sizeof s->handlers);
    *out = s;
    return HS_OK;
}

void hs_replica_spec_free(hs_replica_spec *s) { free(s); }

/* ---- lifecycle ---- */

hs_status hs_replica_initialize(const hs_kv_store *kv, const hs_app_updates *initial_app_state,
                                const hs_vss *initial_vss) {
    return hs_bt_initialize(kv, initial_app_state, initial_vss);
}

hs_status hs_replica_is_initialized(const hs_kv_store *kv, bool *out) {
    hs_kv_reader rd = hs_kv_store_reader(kv);
    hs_pc pc = {0};
    hs_status st = hs_bt_highest_pc(&rd, &pc);
    hs_pc_free(&pc);
    if (st == HS_OK || st == HS_NOT_FOUND) {
        *out = st == HS_OK;
        return HS_OK;
    }
    return st;
}

static void stop_threads(hs_replica *r) {
    atomic_store(&r->stop, true);
    queue_wake(&r->events);
    queue_wake(&r->inbox);
    queue_wake(&r->sync_queue);
    /* Consumers before the poller that feeds them (spec §11.4). */
    if (r->started_bus) pthread_join(r->bus, NULL);
    if (r->started_algorithm) pthread_join(r->algorithm, NULL);
    if (r->started_sync_server) pthread_join(r->sync_server, NULL);
    if (r->started_poller) pthread_join(r->poller, NULL);
    r->started_bus = r->started_algorithm = r->started_sync_server = r->started_poller = false;
}

static void destroy(hs_replica *r) {
    free_msg_nodes(&r->inbox);
    free_msg_nodes(&r->sync_queue);
    free_event_nodes(&r->events);
    queue *qs[] = {&r->inbox, &r->sync_queue, &r->events};
    for (size_t i = 0; i < sizeof qs / sizeof qs[0]; i++) {
        pthread_mutex_destroy(&qs[i]->mu);
        pthread_cond_destroy(&qs[i]->cv);
    }
    hs_core_free(r->core);
    hs_sync_server_free(r->server);
    free(r);
}

hs_status hs_replica_start(const hs_replica_spec *spec, hs_replica **out) {
    *out = NULL;
    hs_status st = hs_crypto_init();
    if (st != HS_OK) return st;
    hs_replica *r = calloc(1, sizeof *r);
    if (!r) return HS_ERR_NOMEM;
    r->spec = *spec;
    atomic_init(&r->stop, false);
    atomic_init(&r->view, 0);
    atomic_init(&r->syncing, false);
    atomic_init(&r->halted, false);
    atomic_init(&r->halt_status, HS_OK);
    queue_init(&r->inbox, spec->cfg.inbox_capacity);
    queue_init(&r->sync_queue, spec->cfg.sync_request_queue_capacity);
    queue_init(&r->events, spec->cfg.event_queue_capacity);
    for (int i = 0; i < HS_EV_COUNT; i++)
        if (spec->handlers[i].fn) r->has_bus = true;
    if (spec->cfg.log_events) r->has_bus = true;

    /* spec §11.3: the network learns the committed validator set first. */
    hs_kv_reader rd = hs_kv_store_reader(&spec->kv);
    hs_validator_set cvs = {0};
    st = hs_bt_committed_vs(&rd, &cvs);
    if (st != HS_OK) {
        hs_log(HS_LOG_ERROR, "replica", "cannot read the committed validator set (%s): was the "
               "store initialised?", hs_status_str(st));
        destroy(r);
        return st == HS_NOT_FOUND ? HS_ERR_STATE : st;
    }
    spec->net.init_validator_set(spec->net.self, &cvs);
    hs_vs_free(&cvs);

    hs_core_env env = {
        .app = spec->app,
        .net = spec->net,
        .kv = spec->kv,
        .emit = r->has_bus ? emit_to_bus : NULL,
        .emit_ctx = r,
    };
    uint64_t now = mono_ms();
    /* Only Block Sync's choice of server is random; it need not be unpredictable. */
    uint64_t key_bits;
    memcpy(&key_bits, spec->cfg.me.public_key.b, sizeof key_bits);
    env.rng_seed = now ^ key_bits ^ (uint64_t)(uintptr_t)r;
    st = hs_core_new(&spec->cfg, &env, now, &r->core);
    if (st == HS_OK) st = hs_sync_server_new(&spec->cfg, &env, now, &r->server);
    if (st != HS_OK) {
        destroy(r);
        return st;
    }
    atomic_store(&r->view, hs_core_view(r->core));

    int rc = pthread_create(&r->poller, NULL, poller_main, r);
    r->started_poller = rc == 0;
    if (rc == 0) {
        rc = pthread_create(&r->sync_server, NULL, sync_server_main, r);
        r->started_sync_server = rc == 0;
    }
    if (rc == 0) {
        rc = pthread_create(&r->algorithm, NULL, algorithm_main, r);
        r->started_algorithm = rc == 0;
    }
    if (rc == 0 && r->has_bus) {
        rc = pthread_create(&r->bus, NULL, bus_main, r);
        r->started_bus = rc == 0;
    }
    if (rc != 0) {
        hs_log(HS_LOG_ERROR, "replica", "cannot start a thread: %s", strerror(rc));
        stop_threads(r);
        destroy(r);
        return HS_ERR_NOMEM;
    }
    *out = r;
    return HS_OK;
}

void hs_replica_stop(hs_replica *r) {
    if (!r) return;
    stop_threads(r);
    destroy(r);
}

hs_status hs_replica_snapshot(hs_replica *r, hs_kv_reader *out) {
    return r->spec.kv.snapshot(r->spec.kv.self, out);
}

void hs_replica_release_snapshot(hs_replica *r, hs_kv_reader *snap) {
    r->spec.kv.release_snapshot(r->spec.kv.self, snap);
}

void hs_replica_get_stats(hs_replica *r, hs_replica_stats *out) {
    out->view = atomic_load(&r->view);
    out->syncing = atomic_load(&r->syncing);
    out->events_dropped = atomic_load(&r->events.dropped);
    out->inbox_dropped = atomic_load(&r->inbox.dropped);
    out->sync_requests_dropped = atomic_load(&r->sync_queue.dropped);
    out->halted = atomic_load(&r->halted);
    out->halt_status = (hs_status)atomic_load(&r->halt_status);
}
