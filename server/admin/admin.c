/* server/admin/admin.c - the Admin service, health and reflection on one completion-queue thread.
 *
 * Shape (after grpc-core.md §5 and §11): the service runs on an hs_rpc_loop (net/loop.h), one
 * NEXT completion queue polled by one thread that owns every gRPC object. Each method has one
 * outstanding request_call; when a call arrives the request is re-armed and the call becomes
 * an `acall` with embedded tags - or, for health and reflection, is handed to the port's
 * hs_svc_set (net/services.h), which serves them as the replica port does. Every call starts
 * {SEND_INITIAL_METADATA, RECV_CLOSE_ON_SERVER} so cancellation is always seen; it is freed
 * when its count of started-but-uncompleted batches reaches zero.
 *
 * Work that waits (Watch streams, Subscribe streams, SubmitTransaction with wait_for_commit)
 * is re-examined on every tick (tick_ms, the loop's timer) and on every wake-up, which the
 * replica's event bus (publish_event, any thread) sends through hs_rpc_loop_wake.
 *
 * Subscriptions: publish_event formats a compact copy of the event (type, time, spec §9 line,
 * block hash, view) into each matching subscriber's ring under one mutex; it never waits for
 * the CQ thread. The CQ thread sends one message at a time per call. CommitBlock events only
 * move a target height: blocks are sent from the store, from the next height the subscriber
 * needs up to that target, so replay and live delivery join without gap or duplicate, and a
 * CommitBlock the replica's own bus dropped is still delivered.
 *
 * Store reads happen on the CQ thread through snapshots: fine for a memory store and
 * LevelDB's cache at admin request rates; a pool would be the next step if they ever showed.
 */
#include "admin/internal.h"

/* ------------------------------------------------------------------------------------------ */
/* Small helpers.                                                                             */

void ad_stat_add(hs_admin *a, uint64_t *field) {
    pthread_mutex_lock(&a->stats_mu);
    (*field)++;
    pthread_mutex_unlock(&a->stats_mu);
}

/* A snapshot of the node's store, released by snap_done. */
bool ad_snap(hs_admin *a, hs_kv_reader *r) {
    return a->node.snapshot(a->node.ctx, r) == HS_OK;
}
void ad_snap_done(hs_admin *a, hs_kv_reader *r) {
    a->node.release_snapshot(a->node.ctx, r);
}

void ad_node_stats(hs_admin *a, hs_replica_stats *st) {
    memset(st, 0, sizeof *st);
    if (a->node.stats) a->node.stats(a->node.ctx, st);
}

/* Highest committed height; false when nothing is committed (or on a read error, logged). */
bool ad_tip_of(const hs_kv_reader *r, uint64_t *tip) {
    hs_status s = hs_bt_highest_committed_height(r, tip);
    if (s != HS_OK && s != HS_NOT_FOUND)
        hs_log(HS_LOG_ERROR, MODULE, "reading the committed height: %s", hs_status_str(s));
    return s == HS_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* The loop.                                                                                  */

/* Readiness: not syncing, and the committed height moved recently. */
static void update_ready(hs_admin *a) {
    if (!hs_rpc_loop_running(&a->loop)) return;
    hs_replica_stats st;
    ad_node_stats(a, &st);
    uint64_t now = hs_mono_ms(), h = 0;
    hs_kv_reader r;
    if (ad_snap(a, &r)) {
        if (ad_tip_of(&r, &h) && (!a->has_height || h != a->last_height)) {
            a->has_height = true;
            a->last_height = h;
            a->last_commit_change_ms = now;
        }
        ad_snap_done(a, &r);
    }
    bool ready = !st.syncing && !st.halted &&
                 now - a->last_commit_change_ms <= a->cfg.ready_max_commit_age_ms;
    hs_health_set(a->health, HS_ADMIN_READY_SERVICE,
                  ready ? HS_HEALTH_SERVING : HS_HEALTH_NOT_SERVING);
}

/* Re-examines everything that waits on time, health or events. */
static void tick(hs_admin *a) {
    update_ready(a);
    hs_svc_pump(&a->svc); /* health Watch streams */
    acall *next;
    for (acall *c = a->live; c; c = next) {
        next = c->next; /* nothing below frees c: frees happen on completions only */
        switch (c->m) {
        case M_SUBSCRIBE:
            if (c->sub && !c->sc.finished && !c->sc.closed) {
                if (ad_sub_overflowed(a, c->sub)) ad_cut_slow(c);
                else if (!c->sc.send_busy) ad_sub_pump(c);
            }
            break;
        case M_SUBMIT: ad_check_wait(c); break;
        default: break;
        }
    }
}

/* The loop's callbacks (net/loop.h). */

static uint64_t on_timers(void *ctx, uint64_t now) {
    hs_admin *a = ctx;
    if (now >= a->next_tick_ms) {
        tick(a);
        a->next_tick_ms = hs_mono_ms() + a->cfg.tick_ms;
    }
    return a->next_tick_ms;
}

/* A wake-up means new events: only subscribers have anything to do (the rest waits for the
 * tick, so a busy event stream costs no store reads beyond the events themselves). */
static void on_wake(void *ctx) {
    hs_admin *a = ctx;
    for (acall *c = a->live; c; c = c->next) {
        if (c->m != M_SUBSCRIBE || !c->sub || c->sc.finished || c->sc.closed) continue;
        if (ad_sub_overflowed(a, c->sub)) ad_cut_slow(c);
        else if (!c->sc.send_busy) ad_sub_pump(c);
    }
}

static void on_drain(void *ctx) {
    hs_admin *a = ctx;
    hs_health_shutdown(a->health);
    tick(a); /* watchers hear NOT_SERVING while they can */
}

static bool idle(void *ctx) {
    hs_admin *a = ctx;
    return a->n_live == 0 && a->n_armed == 0 && hs_svc_live(&a->svc) == 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Public API.                                                                                */

void hs_admin_config_defaults(hs_admin_config *c) {
    memset(c, 0, sizeof *c);
    snprintf(c->listen_address, sizeof c->listen_address, "127.0.0.1:0");
    c->max_recv_message_bytes = 1u << 20;
    c->max_send_message_bytes = 64u << 20;
    c->max_calls = 256;
    c->max_concurrent_streams = 100;
    c->max_subscribers = 64;
    c->subscriber_queue = 1024;
    c->list_page = 100;
    c->max_wait_ms = 60000;
    c->ready_max_commit_age_ms = 10000;
    c->tick_ms = 50;
}

static const char *const served[] = {HS_ADMIN_SERVICE, HS_HEALTH_SERVICE,
                                     HS_REFLECTION_V1_SERVICE, HS_REFLECTION_V1ALPHA_SERVICE};

static void admin_free(hs_admin *a) {
    hs_reflection_free(a->refl);
    hs_health_free(a->health);
    pthread_mutex_destroy(&a->sub_mu);
    pthread_mutex_destroy(&a->stats_mu);
    free(a);
}

static bool config_ok(const hs_admin_config *c, const hs_admin_node *n, char *err,
                      size_t errlen) {
    const char *bad = NULL;
    if (!n || !n->snapshot || !n->release_snapshot) bad = "node.snapshot is required";
    else if (n->tx_height && !n->submit) bad = "node.tx_height without node.submit";
    else if (!c->max_calls) bad = "max_calls must be positive";
    else if (!c->max_subscribers || !c->subscriber_queue)
        bad = "subscriber limits must be positive";
    else if (!c->list_page) bad = "list_page must be positive";
    else if (!c->tick_ms) bad = "tick_ms must be positive";
    else if (!c->max_recv_message_bytes || c->max_recv_message_bytes > INT32_MAX ||
             !c->max_send_message_bytes || c->max_send_message_bytes > INT32_MAX)
        bad = "message size limits must be in 1..2^31-1";
    if (bad) snprintf(err, errlen, "admin: %s", bad);
    return bad == NULL;
}

hs_status hs_admin_start(const hs_admin_config *cfg, const hs_admin_node *node,
                         hs_admin **out, char *err, size_t errlen) {
    *out = NULL;
    if (!config_ok(cfg, node, err, errlen)) return HS_ERR_INVALID;
    hs_admin *a = calloc(1, sizeof *a);
    if (!a) return HS_ERR_NOMEM;
    a->cfg = *cfg;
    a->node = *node;
    pthread_mutex_init(&a->sub_mu, NULL);
    pthread_mutex_init(&a->stats_mu, NULL);
    a->health = hs_health_new();
    a->refl = hs_reflection_new(hs_descriptor_set, hs_descriptor_set_len, served,
                                sizeof served / sizeof served[0]);
    if (!a->health || !a->refl) {
        snprintf(err, errlen, "admin: out of memory (or a bad embedded descriptor set)");
        admin_free(a);
        return HS_ERR_NOMEM;
    }
    grpc_arg args[] = {
        {GRPC_ARG_INTEGER, GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH,
         {.integer = (int)cfg->max_recv_message_bytes}},
        {GRPC_ARG_INTEGER, GRPC_ARG_MAX_SEND_MESSAGE_LENGTH,
         {.integer = (int)cfg->max_send_message_bytes}},
        {GRPC_ARG_INTEGER, GRPC_ARG_MAX_CONCURRENT_STREAMS,
         {.integer = (int)cfg->max_concurrent_streams}},
    };
    grpc_channel_args cargs = {sizeof args / sizeof args[0], args};
    hs_rpc_loop_ops ops = {.ctx = a, .on_wake = on_wake, .on_timers = on_timers,
                           .on_drain = on_drain, .idle = idle};
    hs_status st = hs_rpc_loop_open(&a->loop, cfg->listen_address, &cargs, ad_methods,
                                    M_GENERIC, a->rm, &ops, STOP_GRACE_MS, "admin", err, errlen);
    if (st != HS_OK) {
        admin_free(a);
        return st;
    }
    hs_svc_init(&a->svc, &a->loop, a->health, a->refl);
    const char *names[] = {"", HS_ADMIN_SERVICE, HS_HEALTH_SERVICE, HS_REFLECTION_V1_SERVICE,
                           HS_REFLECTION_V1ALPHA_SERVICE};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        hs_health_set(a->health, names[i], HS_HEALTH_SERVING);
    a->last_commit_change_ms = hs_mono_ms();
    update_ready(a);
    a->next_tick_ms = hs_mono_ms() + cfg->tick_ms;
    for (int m = 0; m < M_COUNT; m++) ad_arm(a, (enum method)m);
    if (hs_rpc_loop_start(&a->loop) != HS_OK) {
        hs_rpc_loop_stop(&a->loop); /* the stop sequence, inline */
        admin_free(a);
        snprintf(err, errlen, "admin: cannot start a thread");
        return HS_ERR_NOMEM;
    }
    *out = a;
    return HS_OK;
}

int hs_admin_port(const hs_admin *a) {
    return a->loop.srv.port;
}

hs_health *hs_admin_health(hs_admin *a) {
    return a->health;
}

void hs_admin_get_stats(hs_admin *a, hs_admin_stats *out) {
    pthread_mutex_lock(&a->stats_mu);
    *out = a->stats;
    pthread_mutex_unlock(&a->stats_mu);
}

void hs_admin_stop(hs_admin *a) {
    if (!a) return;
    hs_rpc_loop_stop(&a->loop);
    admin_free(a);
}
