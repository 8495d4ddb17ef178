/* server/replica/network.c - libhotstuff's Network interface over the transport (any thread): the
 * inbox, the outboxes, gossip batching, the tx handler and the kick. */
#include "replica/internal.h"

/* ------------------------------------------------------------------------------------------ */
/* Small helpers.                                                                             */

void tp_key_name(const hs_key *k, char out[8]) {
    hs_b64_short(k->b, HS_KEY_LEN, out);
}

int tp_key_cmp(const hs_key *a, const hs_key *b) {
    return memcmp(a->b, b->b, HS_KEY_LEN);
}

peer *tp_find_peer(hs_transport *t, const hs_key *k) {
    size_t lo = 0, hi = t->n_peers;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = tp_key_cmp(&t->peers[mid].key, k);
        if (c == 0) return &t->peers[mid];
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

/* Random delay in [backoff/2, backoff]. */
uint64_t tp_jitter(uint64_t backoff) {
    uint64_t half = backoff / 2;
    uint32_t span = half > UINT32_MAX - 1 ? UINT32_MAX - 1 : (uint32_t)half;
    return backoff - half + randombytes_uniform(span + 1);
}

/* ------------------------------------------------------------------------------------------ */
/* Kick: wake the CQ thread from any thread.                                                  */

void tp_kick(hs_transport *t) {
    hs_rpc_loop_wake(&t->loop);
}

/* ------------------------------------------------------------------------------------------ */
/* Inbox.                                                                                     */

void tp_inbox_item_free(inbox_item *it) {
    if (!it) return;
    hs_msg_free(&it->msg);
    free(it);
}

/* Calls from other threads (broadcast, send, recv, gossip) hold the transport open while
 * they run: stop closes it first, then waits for them to leave before tearing down. */
static bool api_enter(hs_transport *t) {
    pthread_mutex_lock(&t->in.mu);
    bool open = !t->in.closed;
    if (open) t->in.users++;
    pthread_mutex_unlock(&t->in.mu);
    return open;
}

static void api_leave(hs_transport *t) {
    pthread_mutex_lock(&t->in.mu);
    if (--t->in.users == 0 && t->in.closed) pthread_cond_broadcast(&t->in.cv);
    pthread_mutex_unlock(&t->in.mu);
}

/* Queues a decoded message (ownership of *m moves in; *m is left empty). */
void tp_inbox_put(hs_transport *t, const hs_key *origin, hs_msg *m) {
    inbox_item *it = malloc(sizeof *it);
    if (!it) {
        hs_msg_free(m);
        pthread_mutex_lock(&t->mu);
        t->stats.inbox_dropped++;
        pthread_mutex_unlock(&t->mu);
        return;
    }
    it->origin = *origin;
    it->msg = *m;
    memset(m, 0, sizeof *m);
    qent e = {.item = it};
    e.rank = tp_msg_rank(&it->msg, &e.view);
    qent dropped;
    pthread_mutex_lock(&t->in.mu);
    bool closed = t->in.closed;
    bool drop = !closed && tp_evq_push(&t->in.q, e, false, &dropped);
    if (!closed) pthread_cond_signal(&t->in.cv);
    pthread_mutex_unlock(&t->in.mu);
    if (closed) {
        tp_inbox_item_free(it);
        return;
    }
    if (drop) {
        const inbox_item *d = dropped.item;
        hs_log(dropped.rank == RANK_SYNC_RESPONSE ? HS_LOG_WARN : HS_LOG_DEBUG, MODULE,
               "inbox full (%u): dropped a %s", t->in.q.cap, hs_msg_type_name(d->msg.type));
        tp_inbox_item_free(dropped.item);
        pthread_mutex_lock(&t->mu);
        t->stats.inbox_dropped++;
        pthread_mutex_unlock(&t->mu);
    }
}

/* CQ thread: whether an open stream should stop reading for now. Sets in.paused so that recv
 * knows to ask for a resume. */
bool tp_inbox_should_pause(hs_transport *t) {
    pthread_mutex_lock(&t->in.mu);
    bool over = t->in.q.n >= t->in.high;
    if (over) t->in.paused = true;
    pthread_mutex_unlock(&t->in.mu);
    return over;
}

static hs_status net_recv(void *self, int timeout_ms, hs_key *origin, hs_msg *out) {
    hs_transport *t = self;
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    if (timeout_ms > 0) {
        until.tv_sec += timeout_ms / 1000;
        until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) until.tv_sec++, until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&t->in.mu);
    if (t->in.closed) {
        pthread_mutex_unlock(&t->in.mu);
        return HS_ERR_CLOSED;
    }
    t->in.users++;
    while (t->in.q.n == 0 && !t->in.closed && timeout_ms != 0) {
        if (timeout_ms < 0) {
            pthread_cond_wait(&t->in.cv, &t->in.mu);
        } else if (pthread_cond_timedwait(&t->in.cv, &t->in.mu, &until) == ETIMEDOUT) {
            break;
        }
    }
    qent e;
    hs_status st = t->in.closed ? HS_ERR_CLOSED : tp_evq_pop(&t->in.q, &e) ? HS_OK : HS_TIMEOUT;
    bool resume = st == HS_OK && t->in.paused && t->in.q.n <= t->in.low;
    if (resume) t->in.paused = false;
    if (--t->in.users == 0 && t->in.closed) pthread_cond_broadcast(&t->in.cv);
    pthread_mutex_unlock(&t->in.mu);
    if (st != HS_OK) return st;

    inbox_item *it = e.item;
    *origin = it->origin;
    *out = it->msg;
    free(it);
    if (resume) {
        atomic_store(&t->resume_recv, true);
        tp_kick(t);
    }
    return HS_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* Outboxes (any thread).                                                                     */

/* Queues one reference to b for p. Caller holds t->mu. */
static void outbox_put_locked(hs_transport *t, peer *p, blob *b, uint8_t rank, uint64_t view) {
    qent e = {.item = tp_blob_ref(b), .rank = rank, .view = view};
    qent dropped;
    if (tp_evq_push(&p->outbox, e, false, &dropped)) {
        p->dropped++;
        hs_log(dropped.rank == RANK_SYNC_RESPONSE ? HS_LOG_WARN : HS_LOG_DEBUG, MODULE,
               "outbox of %s full (%u): dropped a frame of rank %d view %llu", p->name,
               p->outbox.cap, dropped.rank, (unsigned long long)dropped.view);
        tp_blob_unref(dropped.item);
    }
}

static bool frame_fits(hs_transport *t, const blob *b, const char *what) {
    if (b->len <= t->cfg.max_message_bytes) return true;
    hs_log(HS_LOG_ERROR, MODULE, "%s of %u bytes is over max_message_bytes (%zu): not sent", what,
           b->len, t->cfg.max_message_bytes);
    pthread_mutex_lock(&t->mu);
    t->stats.dropped_too_large++;
    pthread_mutex_unlock(&t->mu);
    return false;
}

/* Encodes a protocol message as a frame. NULL when memory runs out (logged). */
static blob *message_frame(const hs_msg *m) {
    hs_pb_arena a;
    hs_pb_arena_init(&a);
    Hotstuff__V1__Frame f = HOTSTUFF__V1__FRAME__INIT;
    f.kind_case = HOTSTUFF__V1__FRAME__KIND_MESSAGE;
    f.message = hs_map_msg_to_pb(&a, m);
    blob *b = f.message ? tp_frame_pack(&f) : NULL;
    hs_pb_arena_free(&a);
    if (!b) hs_log(HS_LOG_ERROR, MODULE, "out of memory encoding a %s", hs_msg_type_name(m->type));
    return b;
}

static void deliver_local(hs_transport *t, const hs_msg *m) {
    hs_msg copy;
    if (hs_msg_copy(&copy, m) != HS_OK) {
        pthread_mutex_lock(&t->mu);
        t->stats.inbox_dropped++;
        pthread_mutex_unlock(&t->mu);
        return;
    }
    tp_inbox_put(t, &t->cfg.me.public_key, &copy);
}

static void net_broadcast(void *self, const hs_msg *m) {
    hs_transport *t = self;
    if (!api_enter(t)) return;
    deliver_local(t, m);
    blob *b = t->n_peers ? message_frame(m) : NULL;
    if (!b) return api_leave(t);
    if (frame_fits(t, b, hs_msg_type_name(m->type))) {
        uint64_t view;
        uint8_t rank = tp_msg_rank(m, &view);
        pthread_mutex_lock(&t->mu);
        for (size_t i = 0; i < t->n_peers; i++) outbox_put_locked(t, &t->peers[i], b, rank, view);
        pthread_mutex_unlock(&t->mu);
        tp_kick(t);
    }
    tp_blob_unref(b);
    api_leave(t);
}

static void send_to(hs_transport *t, const hs_key *to, const hs_msg *m) {
    if (tp_key_cmp(to, &t->cfg.me.public_key) == 0) {
        deliver_local(t, m);
        return;
    }
    peer *p = tp_find_peer(t, to);
    if (!p) {
        char name[8];
        tp_key_name(to, name);
        hs_log(HS_LOG_DEBUG, MODULE, "send of a %s to %s: not a peer", hs_msg_type_name(m->type),
               name);
        pthread_mutex_lock(&t->mu);
        t->stats.dropped_unknown_peer++;
        pthread_mutex_unlock(&t->mu);
        return;
    }
    blob *b = message_frame(m);
    if (!b) return;
    if (frame_fits(t, b, hs_msg_type_name(m->type))) {
        uint64_t view;
        uint8_t rank = tp_msg_rank(m, &view);
        pthread_mutex_lock(&t->mu);
        outbox_put_locked(t, p, b, rank, view);
        pthread_mutex_unlock(&t->mu);
        tp_kick(t);
    }
    tp_blob_unref(b);
}

static void net_send(void *self, const hs_key *to, const hs_msg *m) {
    hs_transport *t = self;
    if (!api_enter(t)) return;
    send_to(t, to, m);
    api_leave(t);
}

static void net_init_validator_set(void *self, const hs_validator_set *vs) {
    /* Peers come from the configuration; the validator set does not change who we talk to. */
    hs_log(HS_LOG_DEBUG, MODULE, "validator set of %u members", vs->n);
}

static void net_update_validator_set(void *self, const hs_vs_updates *u) {
    hs_log(HS_LOG_DEBUG, MODULE, "validator set update: %u inserts, %u deletes", u->n_inserts,
           u->n_deletes);
}

hs_network hs_transport_network(hs_transport *t) {
    hs_network n = {
        .self = t,
        .init_validator_set = net_init_validator_set,
        .update_validator_set = net_update_validator_set,
        .broadcast = net_broadcast,
        .send = net_send,
        .recv = net_recv,
    };
    return n;
}

/* A gossip batch is flushed once it holds this much (or at the CQ thread's next wake-up,
 * whichever comes first). Each transaction costs at most 1 + 10 bytes of framing. */
static size_t gossip_batch_limit(const hs_transport *t) {
    size_t lim = t->cfg.max_message_bytes / 2;
    return lim < GOSSIP_BATCH_BYTES ? lim : GOSSIP_BATCH_BYTES;
}

/* Packs the pending batch as one frame to every connected peer and empties it. Under t->mu.
 * A batch that cannot be packed (out of memory) is dropped and counted: gossip is an
 * optimisation, the replica the transactions were submitted to still holds them. */
void tp_gossip_flush_locked(hs_transport *t) {
    size_t n = t->gossip.n;
    if (n == 0) return;
    ProtobufCBinaryData *items = malloc(n * sizeof *items);
    blob *b = NULL;
    if (items) {
        size_t off = 0;
        for (size_t i = 0; i < n; i++) {
            items[i].data = t->gossip.buf + off;
            items[i].len = t->gossip.lens[i];
            off += t->gossip.lens[i];
        }
        assert(off == t->gossip.len);
        /* The first goes in data, the rest in batch: a replica from before batching reads
         * only data, so during a rolling upgrade it still gets one per frame. */
        Hotstuff__V1__Transaction x = HOTSTUFF__V1__TRANSACTION__INIT;
        x.data = items[0];
        x.n_batch = n - 1;
        x.batch = n > 1 ? items + 1 : NULL;
        Hotstuff__V1__Frame f = HOTSTUFF__V1__FRAME__INIT;
        f.kind_case = HOTSTUFF__V1__FRAME__KIND_TRANSACTION;
        f.transaction = &x;
        b = tp_frame_pack(&f);
        free(items);
    }
    t->gossip.n = 0;
    t->gossip.len = 0;
    if (!b) {
        t->stats.dropped_gossip += n;
        hs_log(HS_LOG_WARN, MODULE, "out of memory: a gossip batch of %zu transactions dropped", n);
        return;
    }
    /* The batch limit keeps the frame well under max_message_bytes. */
    assert(b->len <= t->cfg.max_message_bytes);
    t->stats.gossip_txs += n;
    t->stats.gossip_batches++;
    for (size_t i = 0; i < t->n_peers; i++) {
        if (t->peers[i].connected) outbox_put_locked(t, &t->peers[i], b, RANK_TX, 0);
    }
    tp_blob_unref(b);
}

/* Appends to the pending batch (flushing first when it would overflow). Under t->mu. */
static void gossip_add_locked(hs_transport *t, const uint8_t *tx, size_t len) {
    size_t lim = gossip_batch_limit(t);
    if (t->gossip.n && t->gossip.len + len > lim) tp_gossip_flush_locked(t);
    if (t->gossip.len + len > t->gossip.cap) {
        size_t cap = t->gossip.cap ? t->gossip.cap : 4096;
        while (cap < t->gossip.len + len) cap *= 2;
        uint8_t *nb = realloc(t->gossip.buf, cap);
        if (!nb) goto nomem;
        t->gossip.buf = nb;
        t->gossip.cap = cap;
    }
    if (t->gossip.n == t->gossip.lens_cap) {
        size_t cap = t->gossip.lens_cap ? 2 * t->gossip.lens_cap : 64;
        size_t *nl = realloc(t->gossip.lens, cap * sizeof *nl);
        if (!nl) goto nomem;
        t->gossip.lens = nl;
        t->gossip.lens_cap = cap;
    }
    memcpy(t->gossip.buf + t->gossip.len, tx, len);
    t->gossip.len += len;
    t->gossip.lens[t->gossip.n++] = len;
    if (t->gossip.len >= lim) tp_gossip_flush_locked(t);
    return;
nomem:
    t->stats.dropped_gossip++;
    hs_log(HS_LOG_WARN, MODULE, "out of memory: a gossiped transaction dropped");
}

void hs_transport_gossip_tx(hs_transport *t, const uint8_t *tx, size_t len) {
    if (!api_enter(t)) return;
    /* A lone transaction over the batch limit would make a frame over max_message_bytes. */
    if (len > gossip_batch_limit(t)) {
        hs_log(HS_LOG_ERROR, MODULE,
               "transaction of %zu bytes is over half of max_message_bytes (%zu): not gossiped",
               len, t->cfg.max_message_bytes);
        pthread_mutex_lock(&t->mu);
        t->stats.dropped_too_large++;
        pthread_mutex_unlock(&t->mu);
        return api_leave(t);
    }
    pthread_mutex_lock(&t->mu);
    gossip_add_locked(t, tx, len);
    pthread_mutex_unlock(&t->mu);
    tp_kick(t); /* the CQ thread flushes what is pending when it wakes */
    api_leave(t);
}

void hs_transport_set_tx_handler(hs_transport *t, hs_transport_tx_fn fn, void *ctx) {
    pthread_mutex_lock(&t->mu);
    t->tx_fn = fn;
    t->tx_ctx = ctx;
    pthread_mutex_unlock(&t->mu);
}

/* Calls the tx handler (CQ thread); returns its status code, with reason filled. */
int tp_call_tx_handler(hs_transport *t, const hs_key *from, const uint8_t *tx, size_t len,
                       char reason[256]) {
    pthread_mutex_lock(&t->mu);
    hs_transport_tx_fn fn = t->tx_fn;
    void *ctx = t->tx_ctx;
    pthread_mutex_unlock(&t->mu);
    reason[0] = '\0';
    if (!fn) {
        snprintf(reason, 256, "not accepting transactions yet");
        return GRPC_STATUS_UNAVAILABLE;
    }
    int code = fn(ctx, from, tx, len, reason);
    reason[255] = '\0';
    if (code < 0 || code > GRPC_STATUS_UNAUTHENTICATED) code = GRPC_STATUS_INTERNAL;
    return code;
}
