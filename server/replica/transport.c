/* server/replica/transport.c - the replica-to-replica network over gRPC core. See transport.h.
 *
 * THREADS. One thread (the "CQ thread", an hs_rpc_loop: net/loop.h) owns the completion queue,
 * the server, every call and every channel: only it starts batches, requests calls, cancels
 * and unrefs. Other threads (the library's algorithm, sync-server and poller threads; the app)
 * touch only plain data under t->mu (outboxes, stats, the tx handler) or inbox.mu (the inbox),
 * then wake the CQ thread (hs_rpc_loop_wake; at most one wake-up is queued at a time), which
 * runs on_wake: the only gRPC call made from other threads (net/rpc.h).
 *
 * STREAMS. One Connect stream per pair of peers. The lower key dials the higher one (peers
 * with no address are never dialed); the higher key dials only once, at start (DIALING), and
 * otherwise accepts. Any configured peer may
 * dial, though, so misconfigured pairs still connect. A stream is attributed to a key only
 * after the handshake (replica.proto's file comment) has verified the remote's signature.
 * If a second authenticated stream appears for a peer that has one, the "canonical" stream
 * (the one dialed by the lower key) wins; between two streams of the same direction the newer
 * wins (the older one is most likely a dead connection the remote already gave up on). The
 * loser ends with ALREADY_EXISTS. Both sides apply the same rule, so they keep the same one.
 *
 * Refusals, each with an hs_log line and counted: in refused_handshakes before the remote is
 * authenticated, in bad_messages after.
 *   wrong chain id or protocol version   FAILED_PRECONDITION
 *   key not among the peers (or our own) PERMISSION_DENIED
 *   bad handshake signature              UNAUTHENTICATED
 *   malformed or out-of-order frame      INVALID_ARGUMENT
 *   handshake not done in time           DEADLINE_EXCEEDED (inbound streams only)
 *   too many streams in handshake        RESOURCE_EXHAUSTED
 *   message over max_message_bytes       RESOURCE_EXHAUSTED, by gRPC's own size check; we only
 *                                        recognise it to count it (see oversized())
 *   a second stream for a connected pair ALREADY_EXISTS (not counted: see below)
 *   unknown method                       UNIMPLEMENTED (a generic request_call stays armed;
 *                                        counted in unimplemented_calls)
 *
 * OPERATOR SERVICES. The port also serves grpc.health.v1.Health (entries "" and
 * hotstuff.v1.Replica: SERVING until stop begins, NOT_SERVING from then on) and server
 * reflection v1 and v1alpha from the embedded descriptor set, so grpcurl and health probers
 * work here as on the admin port: the same code serves both (net/services.h), and stop waits
 * for those calls like for the others.
 *
 * DIALING. At start a replica also dials, once, each peer with a lower key that has an
 * address (the lower key dials as usual): a replica that restarts is then linked to every live
 * peer at once, instead of waiting for the lower key's redial backoff (up to reconnect_max_ms)
 * while it is cut off from them - which, with another validator down, stalls commits (the
 * fault test saw 3.9 s). If both ends dial, the duplicate rule above keeps one stream. A
 * failed start-up dial is not retried: the lower key's own dialing takes over. A dialed peer
 * gets a fresh channel per attempt (local subchannel pool, so no
 * reconnect state is shared between attempts) and a fail-fast call. When the attempt fails or
 * the stream later ends, the next attempt waits backoff/2 + uniform(0, backoff/2) ms; backoff
 * starts at reconnect_initial_ms and doubles after each failed attempt up to reconnect_max_ms;
 * it goes back to the initial value when a stream ends after staying up for STABLE_MS.
 *
 * OUTBOX AND DROP POLICY. Each peer has one outbox of at most outbox_capacity encoded frames.
 * It belongs to the peer, not to a stream: broadcast and send queue to every configured peer
 * whether or not it is connected right now, the queue survives reconnects, and a frame whose
 * send failed because its stream broke goes back to the head of the queue. (Gossiped
 * transactions go only to peers connected at the time, as transport.h says.) One SEND is in
 * flight per stream, with GRPC_WRITE_BUFFER_HINT while more frames wait. When a frame arrives
 * at a full outbox, one frame is dropped - the lowest-ranked among the queued ones and the new
 * one - and counted in that peer's dropped_outbox_full. Ranks, dropped first to last:
 *   1. advertisements (AdvertiseBlock, AdvertisePC): periodic, each superseded by the next;
 *   2. gossiped transactions: the replica they were submitted to still holds them;
 *   3. progress messages (Proposal, Nudge, PhaseVote, NewView, TimeoutVote, AdvanceView),
 *      lowest view first: a replica drops messages of past views anyway;
 *   4. BlockSyncRequest: the sync client retries on its own timeout;
 *   5. BlockSyncResponse: costly to rebuild; dropped only when the outbox holds nothing else,
 *      and then counted and logged at warn level.
 * Within a rank (and view) the oldest goes first. Frames larger than max_message_bytes are
 * never queued (dropped_too_large, error log); send to a key that is not a peer is counted in
 * dropped_unknown_peer. Nothing is dropped without a count.
 *
 * INBOX. Decoded messages wait for Network.recv in a queue of inbox_capacity with the same
 * policy (inbox_dropped). Above 3/4 of capacity the CQ thread stops re-arming RECV on open
 * streams (HTTP/2 flow control then pushes back on the senders, whose outboxes apply the
 * policy); recv re-arms them through a kick once the queue is down to half. broadcast and send
 * to our own key put a copy straight into the inbox, attributed to our own key.
 *
 * STOP. hs_transport_stop closes the inbox (waking blocked recv calls) and waits for calls of
 * other threads to leave the transport; then the loop (net/loop.h) runs its stop sequence with
 * this file's callbacks: the server shuts down, dialing stops and streams still in handshake
 * end (on_drain); open streams flush their outboxes for up to STOP_GRACE_MS (flushed); every
 * call is cancelled, the streams we dialed by us (on_cancel); once every call has finished
 * and every request come back (idle) the server and queue go. stop then frees the rest.
 */
#include "replica/transport.h"
#include "replica/internal.h"

/* qsort order of the peer table (find_peer searches it). */
static int peer_cmp(const void *a, const void *b) {
    return tp_key_cmp(&((const peer *)a)->key, &((const peer *)b)->key);
}

/* ------------------------------------------------------------------------------------------ */
/* The loop's callbacks (net/loop.h), on the CQ thread.                                        */

static void on_wake(void *ctx) {
    hs_transport *t = ctx;
    if (atomic_exchange(&t->resume_recv, false)) {
        for (stream *s = t->streams; s; s = s->next)
            if (s->recv_paused) tp_stream_arm_recv(s);
    }
    pthread_mutex_lock(&t->mu);
    tp_gossip_flush_locked(t);
    pthread_mutex_unlock(&t->mu);
    for (size_t i = 0; i < t->n_peers; i++) {
        stream *s = t->peers[i].active;
        if (s && !s->send_in_flight) tp_stream_pump(s);
    }
}

static void on_drain(void *ctx) {
    hs_transport *t = ctx;
    hs_health_shutdown(t->health); /* a Check during the grace period says NOT_SERVING */
    hs_svc_pump(&t->svc);          /* and so do the Watch streams */
    /* Streams still in handshake carry nothing worth waiting for. */
    for (stream *s = t->streams, *nx; s; s = nx) {
        nx = s->next;
        if (s->state == ST_HANDSHAKE) tp_stream_end(s, GRPC_STATUS_UNAVAILABLE, "shutting down");
    }
}

/* The grace may end early once every open stream's outbox is empty and the operator services
 * have sent what they were sending (a Watch's NOT_SERVING). */
static bool flushed(void *ctx) {
    hs_transport *t = ctx;
    if (!hs_svc_flushed(&t->svc)) return false;
    for (size_t i = 0; i < t->n_peers; i++) {
        stream *s = t->peers[i].active;
        if (!s) continue;
        pthread_mutex_lock(&t->mu);
        uint32_t n = t->peers[i].outbox.n;
        pthread_mutex_unlock(&t->mu);
        if (n || s->send_in_flight) return false;
    }
    return true;
}

/* The server's calls are cancelled by the loop; the streams we dialed are ours to end. */
static void on_cancel(void *ctx) {
    hs_transport *t = ctx;
    for (stream *s = t->streams, *nx; s; s = nx) {
        nx = s->next;
        if (s->dialed) tp_stream_end(s, GRPC_STATUS_UNAVAILABLE, "shutting down");
    }
}

static bool idle(void *ctx) {
    hs_transport *t = ctx;
    if (t->streams || hs_svc_live(&t->svc)) return false;
    for (int i = 0; i < ACCEPT_COUNT; i++)
        if (t->acc[i].armed) return false;
    return true;
}

/* Dials and handshake deadlines. */
static uint64_t on_timers(void *ctx, uint64_t now) {
    hs_transport *t = ctx;
    uint64_t next = UINT64_MAX;
    if (hs_rpc_loop_running(&t->loop)) {
        for (size_t i = 0; i < t->n_peers; i++) {
            peer *p = &t->peers[i];
            if ((!p->dial && !p->dial_once) || p->active || p->dialing) continue;
            if (now >= p->next_dial_ms) tp_dial(t, p);
            else if (p->next_dial_ms < next) next = p->next_dial_ms;
        }
    }
    for (stream *s = t->streams, *nx; s; s = nx) {
        nx = s->next;
        if (s->state != ST_HANDSHAKE) continue;
        if (now >= s->handshake_deadline_ms) {
            if (s->dialed) tp_stream_end(s, GRPC_STATUS_DEADLINE_EXCEEDED, "handshake timed out");
            else tp_refuse(s, GRPC_STATUS_DEADLINE_EXCEEDED, "handshake timed out");
        } else if (s->handshake_deadline_ms < next) {
            next = s->handshake_deadline_ms;
        }
    }
    return next;
}

void tp_on_tag(hs_rpc_tag *base, bool ok) {
    tag *tg = (tag *)base;
    if (tg->kind == TAG_ACCEPT) return tp_on_accept(tg->owner, ok);
    stream *s = tg->owner;
    assert(s->pending > 0);
    s->pending--;
    switch (tg->kind) {
    case TAG_S_CLOSE: tp_on_close(s); break;
    case TAG_S_RECV: tp_on_recv(s, ok); break;
    case TAG_S_SEND: tp_on_send(s, ok); break;
    case TAG_S_MD:
    case TAG_S_STATUS: break;
    default: assert(!"unknown tag kind");
    }
    tp_stream_maybe_free(s);
}

/* ------------------------------------------------------------------------------------------ */
/* Start, stop, stats.                                                                        */

void hs_transport_config_defaults(hs_transport_config *c) {
    c->max_message_bytes = 16u << 20;
    c->outbox_capacity = 1024;
    c->inbox_capacity = 8192;
    c->reconnect_initial_ms = 100;
    c->reconnect_max_ms = 10000;
    c->keepalive_time_ms = 10000;
    c->handshake_timeout_ms = 5000;
    c->limits = hs_limits_default();
}

static grpc_arg int_arg(const char *key, int v) {
    grpc_arg a;
    a.type = GRPC_ARG_INTEGER;
    a.key = (char *)key;
    a.value.integer = v;
    return a;
}

static int clamp_int(uint64_t v) {
    return v > INT_MAX ? INT_MAX : (int)v;
}

/* Keepalive both ways: each side pings every keepalive_time_ms even on idle streams, and
 * accepts the other's pings as often as every keepalive_time_ms / 2, so neither ever sends
 * GOAWAY "too_many_pings" to the other (grpc-core.md pitfall 9). */
static void build_args(hs_transport *t) {
    const hs_transport_config *c = &t->cfg;
    int ka = clamp_int(c->keepalive_time_ms);
    int ka_timeout = clamp_int(c->keepalive_time_ms < 20000 ? c->keepalive_time_ms : 20000);
    int msg = clamp_int(c->max_message_bytes);
    size_t n = 0;
    grpc_arg *s = t->server_arg_v;
    s[n++] = int_arg(GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, msg);
    s[n++] = int_arg(GRPC_ARG_MAX_SEND_MESSAGE_LENGTH, msg);
    s[n++] = int_arg(GRPC_ARG_KEEPALIVE_TIME_MS, ka);
    s[n++] = int_arg(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, ka_timeout);
    s[n++] = int_arg(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
    s[n++] = int_arg(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
    s[n++] = int_arg(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, ka / 2);
    s[n++] = int_arg(GRPC_ARG_MAX_CONCURRENT_STREAMS, MAX_CONCURRENT_STREAMS);
    t->server_args.num_args = n;
    t->server_args.args = s;

    n = 0;
    grpc_arg *ch = t->channel_arg_v;
    ch[n++] = int_arg(GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, msg);
    ch[n++] = int_arg(GRPC_ARG_MAX_SEND_MESSAGE_LENGTH, msg);
    ch[n++] = int_arg(GRPC_ARG_KEEPALIVE_TIME_MS, ka);
    ch[n++] = int_arg(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, ka_timeout);
    ch[n++] = int_arg(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
    ch[n++] = int_arg(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
    ch[n++] = int_arg(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, ka / 2);
    ch[n++] = int_arg(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    ch[n++] = int_arg(GRPC_ARG_ENABLE_RETRIES, 0);
    ch[n++] = int_arg(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, clamp_int(c->reconnect_initial_ms));
    ch[n++] = int_arg(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, clamp_int(c->reconnect_initial_ms));
    ch[n++] = int_arg(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, clamp_int(c->reconnect_max_ms));
    t->channel_args.num_args = n;
    t->channel_args.args = ch;
}

static hs_status check_config(const hs_transport_config *c, char *err, size_t errlen) {
#define BAD(...) return snprintf(err, errlen, __VA_ARGS__), HS_ERR_INVALID
    if (c->n_peers > MAX_PEERS) BAD("%zu peers, at most %d", c->n_peers, MAX_PEERS);
    if (c->n_peers && !c->peers) BAD("peers is NULL");
    if (c->max_message_bytes < 1024 || c->max_message_bytes > INT_MAX)
        BAD("max_message_bytes %zu is not in [1024, %d]", c->max_message_bytes, INT_MAX);
    if (c->outbox_capacity < 1 || c->outbox_capacity > (1u << 24))
        BAD("outbox_capacity %u is not in [1, 2^24]", c->outbox_capacity);
    if (c->inbox_capacity < 4 || c->inbox_capacity > (1u << 24))
        BAD("inbox_capacity %u is not in [4, 2^24]", c->inbox_capacity);
    if (c->reconnect_initial_ms < 1 || c->reconnect_max_ms < c->reconnect_initial_ms ||
        c->reconnect_max_ms > 3600000)
        BAD("reconnect_initial_ms %llu / reconnect_max_ms %llu: need 1 <= initial <= max <= 1h",
            (unsigned long long)c->reconnect_initial_ms, (unsigned long long)c->reconnect_max_ms);
    if (c->keepalive_time_ms < 1000 || c->keepalive_time_ms > 86400000)
        BAD("keepalive_time_ms %llu is not in [1000, 1 day]",
            (unsigned long long)c->keepalive_time_ms);
    if (c->handshake_timeout_ms < 10 || c->handshake_timeout_ms > 600000)
        BAD("handshake_timeout_ms %llu is not in [10, 600000]",
            (unsigned long long)c->handshake_timeout_ms);
    if (!memchr(c->listen_address, '\0', sizeof c->listen_address) || !c->listen_address[0])
        BAD("listen_address is empty or not terminated");
    for (size_t i = 0; i < c->n_peers; i++) {
        if (!memchr(c->peers[i].address, '\0', sizeof c->peers[i].address))
            BAD("peer %zu: address not terminated", i);
        if (tp_key_cmp(&c->peers[i].key, &c->me.public_key) == 0)
            BAD("peer %zu has our own key", i);
    }
    return HS_OK;
#undef BAD
}

/* Frees what start built, in reverse; safe on a partly built transport. CQ thread gone. */
static void transport_free(hs_transport *t) {
    for (size_t i = 0; i < t->n_peers; i++) {
        qent e;
        while (tp_evq_pop(&t->peers[i].outbox, &e)) tp_blob_unref(e.item);
        free(t->peers[i].outbox.e);
    }
    free(t->peers);
    free(t->gossip.buf);
    free(t->gossip.lens);
    qent e;
    while (tp_evq_pop(&t->in.q, &e)) tp_inbox_item_free(e.item);
    free(t->in.q.e);
    pthread_mutex_destroy(&t->mu);
    pthread_mutex_destroy(&t->in.mu);
    pthread_cond_destroy(&t->in.cv);
    hs_health_free(t->health);
    hs_reflection_free(t->reflection);
    free(t);
}

hs_status hs_transport_start(const hs_transport_config *cfg, hs_transport **out, char *err,
                             size_t errlen) {
    *out = NULL;
    if (errlen) err[0] = '\0';
    hs_status st = check_config(cfg, err, errlen);
    if (st != HS_OK) return st;
    if (hs_crypto_init() != HS_OK) {
        snprintf(err, errlen, "libsodium failed to initialise");
        return HS_ERR_STATE;
    }
    hs_transport *t = calloc(1, sizeof *t);
    if (!t) return HS_ERR_NOMEM;
    t->cfg = *cfg;
    t->cfg.peers = NULL;
    t->cfg.n_peers = 0;
    pthread_mutex_init(&t->mu, NULL);
    pthread_mutex_init(&t->in.mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&t->in.cv, &ca);
    pthread_condattr_destroy(&ca);
    t->in.high = cfg->inbox_capacity - cfg->inbox_capacity / 4;
    t->in.low = cfg->inbox_capacity / 2;
    tp_key_name(&cfg->me.public_key, t->me_name);

    static const char *const served[] = {SERVICE_REPLICA, HS_HEALTH_SERVICE,
                                         HS_REFLECTION_V1_SERVICE, HS_REFLECTION_V1ALPHA_SERVICE};
    t->reflection = hs_reflection_new(hs_descriptor_set, hs_descriptor_set_len, served,
                                      sizeof served / sizeof served[0]);
    t->health = hs_health_new();
    t->peers = calloc(cfg->n_peers ? cfg->n_peers : 1, sizeof *t->peers);
    bool ok = t->peers && t->reflection && t->health &&
              tp_evq_init(&t->in.q, cfg->inbox_capacity) &&
              hs_health_set(t->health, "", HS_HEALTH_SERVING) &&
              hs_health_set(t->health, SERVICE_REPLICA, HS_HEALTH_SERVING);
    for (size_t i = 0; ok && i < cfg->n_peers; i++) {
        peer *p = &t->peers[i];
        p->key = cfg->peers[i].key;
        memcpy(p->address, cfg->peers[i].address, HS_TRANSPORT_MAX_ADDR);
        p->dial = p->address[0] && tp_key_cmp(&cfg->me.public_key, &p->key) < 0;
        p->dial_once = p->address[0] && !p->dial;
        p->backoff_ms = cfg->reconnect_initial_ms;
        tp_key_name(&p->key, p->name);
        t->n_peers = i + 1;
        ok = tp_evq_init(&p->outbox, cfg->outbox_capacity);
    }
    if (!ok) {
        transport_free(t);
        return HS_ERR_NOMEM;
    }
    qsort(t->peers, t->n_peers, sizeof *t->peers, peer_cmp);
    for (size_t i = 1; i < t->n_peers; i++) {
        if (tp_key_cmp(&t->peers[i - 1].key, &t->peers[i].key) == 0) {
            snprintf(err, errlen, "peer %s is listed twice", t->peers[i].name);
            transport_free(t);
            return HS_ERR_INVALID;
        }
    }
    build_args(t);

    hs_rpc_loop_ops ops = {.ctx = t, .on_wake = on_wake, .on_timers = on_timers,
                           .on_drain = on_drain, .flushed = flushed, .on_cancel = on_cancel,
                           .idle = idle};
    st = hs_rpc_loop_open(&t->loop, t->cfg.listen_address, &t->server_args, tp_methods,
                          ACCEPT_GENERIC, t->rm, &ops, STOP_GRACE_MS, "replica transport", err,
                          errlen);
    if (st != HS_OK) {
        transport_free(t);
        return st;
    }
    hs_svc_init(&t->svc, &t->loop, t->health, t->reflection);
    for (int i = 0; i < ACCEPT_COUNT; i++) {
        t->acc[i].kind = (enum accept_kind)i;
        t->acc[i].t = TP_TAG(TAG_ACCEPT, &t->acc[i]);
        t->acc[i].tp = t;
        tp_acceptor_arm(t, &t->acc[i]);
    }
    bool all_armed = true;
    for (int i = 0; i < ACCEPT_COUNT; i++) all_armed = all_armed && t->acc[i].armed;
    if (!all_armed || hs_rpc_loop_start(&t->loop) != HS_OK) {
        snprintf(err, errlen, "cannot start the transport thread");
        hs_rpc_loop_stop(&t->loop); /* the stop sequence, inline: armed requests come back */
        transport_free(t);
        return HS_ERR_STATE;
    }
    hs_log(HS_LOG_INFO, MODULE, "%s listening on port %d, %zu peers", t->me_name,
           t->loop.srv.port, t->n_peers);
    *out = t;
    return HS_OK;
}

int hs_transport_port(const hs_transport *t) {
    return t->loop.srv.port;
}

void hs_transport_stop(hs_transport *t) {
    if (!t) return;
    pthread_mutex_lock(&t->in.mu);
    t->in.closed = true;
    pthread_cond_broadcast(&t->in.cv);
    while (t->in.users > 0) pthread_cond_wait(&t->in.cv, &t->in.mu);
    pthread_mutex_unlock(&t->in.mu);
    hs_rpc_loop_stop(&t->loop);
    transport_free(t);
}

void hs_transport_get_stats(hs_transport *t, hs_transport_stats *out) {
    pthread_mutex_lock(&t->mu);
    *out = t->stats;
    pthread_mutex_unlock(&t->mu);
}

hs_health *hs_transport_health(hs_transport *t) {
    return t->health;
}

size_t hs_transport_get_peer_stats(hs_transport *t, hs_transport_peer_stats *out, size_t cap) {
    pthread_mutex_lock(&t->mu);
    for (size_t i = 0; i < t->n_peers && i < cap; i++) {
        const peer *p = &t->peers[i];
        out[i].key = p->key;
        out[i].connected = p->connected;
        out[i].sent = p->sent;
        out[i].received = p->received;
        out[i].dropped_outbox_full = p->dropped;
        out[i].reconnects = p->reconnects;
    }
    pthread_mutex_unlock(&t->mu);
    return t->n_peers;
}
