/* server/replica/stream.c - Connect streams (CQ thread): lifecycle, the signed handshake,
 * sending from the peer's outbox, receiving into the inbox, and dialing. */
#include "replica/internal.h"

/* ------------------------------------------------------------------------------------------ */
/* Streams: lifecycle (CQ thread).                                                            */

static void schedule_dial(hs_transport *t, peer *p, bool failed);

bool tp_start_batch(stream *s, const grpc_op *ops, size_t n, tag *tg) {
    grpc_call_error e = grpc_call_start_batch(s->call, ops, n, tg, NULL);
    if (e != GRPC_CALL_OK) {
        hs_log(HS_LOG_ERROR, MODULE, "stream %s: tp_start_batch(kind %d) failed: %d", s->addr,
               tg->kind, (int)e);
        grpc_call_cancel(s->call, NULL);
        return false;
    }
    s->pending++;
    return true;
}

stream *tp_stream_new(hs_transport *t, grpc_call *call, bool dialed) {
    stream *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->t = t;
    s->call = call;
    s->dialed = dialed;
    s->state = ST_HANDSHAKE;
    s->handshake_deadline_ms = hs_mono_ms() + t->cfg.handshake_timeout_ms;
    s->t_close = TP_TAG(TAG_S_CLOSE, s);
    s->t_recv = TP_TAG(TAG_S_RECV, s);
    s->t_send = TP_TAG(TAG_S_SEND, s);
    s->t_md = TP_TAG(TAG_S_MD, s);
    s->t_status = TP_TAG(TAG_S_STATUS, s);
    grpc_metadata_array_init(&s->init_md);
    grpc_metadata_array_init(&s->trail_md);
    s->details = grpc_empty_slice();
    randombytes_buf(s->my_challenge, CHALLENGE_LEN);
    s->next = t->streams;
    if (t->streams) t->streams->prev = s;
    t->streams = s;
    return s;
}

void tp_stream_free(stream *s) {
    hs_transport *t = s->t;
    assert(s->pending == 0 && s->closed); /* a batch still out would complete into freed memory */
    if (s->prev) s->prev->next = s->next;
    else t->streams = s->next;
    if (s->next) s->next->prev = s->prev;
    if (!s->dialed && s->state == ST_HANDSHAKE) t->n_handshaking_inbound--;
    for (int i = 0; i < s->n_ctrl; i++) tp_blob_unref(s->ctrl[i]);
    if (s->recv_bb) grpc_byte_buffer_destroy(s->recv_bb);
    grpc_metadata_array_destroy(&s->init_md);
    grpc_metadata_array_destroy(&s->trail_md);
    grpc_slice_unref(s->details);
    gpr_free((void *)s->error_string);
    if (s->call) grpc_call_unref(s->call);
    if (s->channel) grpc_channel_destroy(s->channel);
    free(s);
}

void tp_stream_maybe_free(stream *s) {
    if (s->closed && s->pending == 0) tp_stream_free(s);
}

/* Leaves the handshake state (bookkeeping of the inbound handshake bound). */
static void stream_set_state(stream *s, enum stream_state st) {
    if (!s->dialed && s->state == ST_HANDSHAKE && st != ST_HANDSHAKE)
        s->t->n_handshaking_inbound--;
    s->state = st;
}

/* The stream no longer carries traffic for its peer. Idempotent. */
static void stream_detach(stream *s) {
    if (s->detached) return;
    s->detached = true;
    peer *p = s->peer;
    if (!p) return;
    hs_transport *t = s->t;
    if (p->dialing == s) {
        p->dialing = NULL;
        schedule_dial(t, p, true);
    }
    if (p->active == s) {
        p->active = NULL;
        pthread_mutex_lock(&t->mu);
        p->connected = false;
        pthread_mutex_unlock(&t->mu);
        hs_log(HS_LOG_INFO, MODULE, "disconnected from %s", p->name);
        /* Only a stream that stayed up resets the backoff, so that a peer that authenticates
         * and then fails at once (or fights over duplicates) is not redialed in a tight loop. */
        bool stable = hs_mono_ms() - s->opened_ms >= STABLE_MS;
        if (stable) p->backoff_ms = t->cfg.reconnect_initial_ms;
        schedule_dial(t, p, !stable);
    }
}

/* Ends a stream with a status: the remote sees `code` and `msg` (for calls we accepted, as
 * the call's status; for calls we dialed, as a cancellation). */
void tp_stream_end(stream *s, grpc_status_code code, const char *fmt, ...) {
    if (s->state == ST_ENDING || s->closed) return;
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    stream_set_state(s, ST_ENDING);
    stream_detach(s);
    grpc_call_cancel_with_status(s->call, code, msg, NULL);
}

/* Counts a refusal in *counter (a field of t->stats) and ends the stream with code. */
static void count_and_end(stream *s, uint64_t *counter, grpc_status_code code, const char *msg) {
    pthread_mutex_lock(&s->t->mu);
    (*counter)++;
    pthread_mutex_unlock(&s->t->mu);
    tp_stream_end(s, code, "%s", msg);
}

/* Refuses a stream for a handshake failure: counted, logged, ended with code. */
void tp_refuse(stream *s, grpc_status_code code, const char *fmt, ...) {
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    hs_log(HS_LOG_WARN, MODULE, "refused %s stream %s: %s (%s)", s->dialed ? "dialed" : "inbound",
           s->addr, msg, hs_grpc_code_name(code));
    count_and_end(s, &s->t->stats.refused_handshakes, code, msg);
}

/* An authenticated peer sent something undecodable: counted, logged, stream ended. */
static void bad_message(stream *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void bad_message(stream *s, const char *fmt, ...) {
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    hs_log(HS_LOG_WARN, MODULE, "bad message from %s: %s", s->peer ? s->peer->name : s->addr, msg);
    count_and_end(s, &s->t->stats.bad_messages, GRPC_STATUS_INVALID_ARGUMENT, msg);
}

static void stream_queue_ctrl(stream *s, Hotstuff__V1__Frame *f) {
    blob *b = tp_frame_pack(f);
    if (!b || s->n_ctrl == 2) {
        tp_blob_unref(b);
        tp_stream_end(s, GRPC_STATUS_INTERNAL, "out of memory");
        return;
    }
    s->ctrl[s->n_ctrl++] = b;
    tp_stream_pump(s);
}

void tp_send_hello(stream *s) {
    hs_transport *t = s->t;
    Hotstuff__V1__Hello h = HOTSTUFF__V1__HELLO__INIT;
    h.protocol_version = PROTOCOL_VERSION;
    h.chain_id = t->cfg.chain_id;
    h.key.data = t->cfg.me.public_key.b;
    h.key.len = HS_KEY_LEN;
    h.challenge.data = s->my_challenge;
    h.challenge.len = CHALLENGE_LEN;
    Hotstuff__V1__Frame f = HOTSTUFF__V1__FRAME__INIT;
    f.kind_case = HOTSTUFF__V1__FRAME__KIND_HELLO;
    f.hello = &h;
    stream_queue_ctrl(s, &f);
}

/* The bytes both sides sign: see replica.proto. role is the signer's. */
static void transcript(const stream *s, uint8_t role, uint8_t out[TRANSCRIPT_LEN]) {
    const hs_transport *t = s->t;
    const uint8_t *dial_ch = s->dialed ? s->my_challenge : s->their_challenge;
    const uint8_t *acc_ch = s->dialed ? s->their_challenge : s->my_challenge;
    const hs_key *dial_key = s->dialed ? &t->cfg.me.public_key : &s->peer->key;
    const hs_key *acc_key = s->dialed ? &s->peer->key : &t->cfg.me.public_key;
    uint8_t *p = out;
    memcpy(p, HANDSHAKE_DOMAIN, HANDSHAKE_DOMAIN_LEN), p += HANDSHAKE_DOMAIN_LEN;
    for (int i = 0; i < 8; i++) *p++ = (uint8_t)(t->cfg.chain_id >> (8 * i));
    memcpy(p, dial_ch, CHALLENGE_LEN), p += CHALLENGE_LEN;
    memcpy(p, acc_ch, CHALLENGE_LEN), p += CHALLENGE_LEN;
    memcpy(p, dial_key->b, HS_KEY_LEN), p += HS_KEY_LEN;
    memcpy(p, acc_key->b, HS_KEY_LEN), p += HS_KEY_LEN;
    *p = role;
}

static void send_auth(stream *s) {
    uint8_t tr[TRANSCRIPT_LEN];
    transcript(s, s->dialed ? ROLE_DIALER : ROLE_ACCEPTOR, tr);
    hs_sig sig;
    hs_sign(&s->t->cfg.me, tr, sizeof tr, &sig);
    Hotstuff__V1__Auth a = HOTSTUFF__V1__AUTH__INIT;
    a.signature.data = sig.b;
    a.signature.len = HS_SIG_LEN;
    Hotstuff__V1__Frame f = HOTSTUFF__V1__FRAME__INIT;
    f.kind_case = HOTSTUFF__V1__FRAME__KIND_AUTH;
    f.auth = &a;
    stream_queue_ctrl(s, &f);
}

/* ------------------------------------------------------------------------------------------ */
/* Streams: sending and receiving (CQ thread).                                                */

/* Starts the next send if none is in flight: control frames first, then (on the peer's
 * active stream) the peer's outbox; on an accepted stream the client half-closed, the final
 * status once everything queued has gone. */
void tp_stream_pump(stream *s) {
    hs_transport *t = s->t;
    if (s->send_in_flight || s->closed) return;
    blob *b = NULL;
    bool more = false;
    if (s->state != ST_ENDING && s->n_ctrl > 0) {
        b = s->ctrl[0];
        s->ctrl[0] = s->ctrl[1];
        s->n_ctrl--;
        s->send_from_outbox = false;
        more = s->n_ctrl > 0;
    } else if (s->state == ST_OPEN && s->peer && s->peer->active == s) {
        pthread_mutex_lock(&t->mu);
        bool got = tp_evq_pop(&s->peer->outbox, &s->sending);
        more = s->peer->outbox.n > 0;
        pthread_mutex_unlock(&t->mu);
        if (got) {
            b = s->sending.item;
            s->send_from_outbox = true;
        }
    }
    if (!b) {
        if (s->want_status && !s->dialed) {
            s->want_status = false;
            grpc_op op = {0};
            op.op = GRPC_OP_SEND_STATUS_FROM_SERVER;
            op.data.send_status_from_server.status = GRPC_STATUS_OK;
            tp_start_batch(s, &op, 1, &s->t_status);
        }
        return;
    }
    s->send_bb = tp_blob_to_bb(b);
    if (!s->send_from_outbox) tp_blob_unref(b); /* the byte buffer holds its own reference */
    grpc_op op = {0};
    op.op = GRPC_OP_SEND_MESSAGE;
    op.flags = more ? GRPC_WRITE_BUFFER_HINT : 0;
    op.data.send_message.send_message = s->send_bb;
    if (tp_start_batch(s, &op, 1, &s->t_send)) {
        s->send_in_flight = true;
    } else {
        grpc_byte_buffer_destroy(s->send_bb);
        s->send_bb = NULL;
    }
}

void tp_on_send(stream *s, bool ok) {
    hs_transport *t = s->t;
    s->send_in_flight = false;
    grpc_byte_buffer_destroy(s->send_bb);
    s->send_bb = NULL;
    if (s->send_from_outbox) {
        peer *p = s->peer;
        s->send_from_outbox = false;
        pthread_mutex_lock(&t->mu);
        if (ok) {
            p->sent++;
            tp_blob_unref(s->sending.item);
        } else {
            /* The stream broke under it: it goes first on the next stream. */
            qent dropped;
            if (tp_evq_push(&p->outbox, s->sending, true, &dropped)) {
                p->dropped++;
                tp_blob_unref(dropped.item);
            }
        }
        pthread_mutex_unlock(&t->mu);
        /* A stream that replaced this one may be idle: give it the frame now. */
        if (!ok && p->active && p->active != s) tp_stream_pump(p->active);
    }
    if (ok) tp_stream_pump(s);
}

void tp_stream_arm_recv(stream *s) {
    if (s->recv_armed || s->closed || s->state == ST_ENDING) return;
    if (s->state == ST_OPEN && tp_inbox_should_pause(s->t)) {
        s->recv_paused = true;
        return;
    }
    s->recv_paused = false;
    grpc_op op = {0};
    op.op = GRPC_OP_RECV_MESSAGE;
    op.data.recv_message.recv_message = &s->recv_bb;
    if (tp_start_batch(s, &op, 1, &s->t_recv)) s->recv_armed = true;
}

/* A stream of ours (dialed or accepted) passed the handshake: make it the peer's stream,
 * unless the peer already has the better one. */
static bool canonical(const stream *s) {
    bool i_am_lower = tp_key_cmp(&s->t->cfg.me.public_key, &s->peer->key) < 0;
    return s->dialed == i_am_lower;
}

static void on_authenticated(stream *s) {
    hs_transport *t = s->t;
    peer *p = s->peer;
    stream_set_state(s, ST_OPEN);
    if (p->dialing == s) p->dialing = NULL;
    stream *old = p->active;
    if (old) {
        bool keep_old = canonical(old) && !canonical(s);
        hs_log(HS_LOG_INFO, MODULE, "second stream with %s: keeping the %s one", p->name,
               keep_old ? "older" : "newer");
        stream *loser = keep_old ? s : old;
        loser->detached = true; /* leave the peer connected through the winner */
        tp_stream_end(loser, GRPC_STATUS_ALREADY_EXISTS, "duplicate stream");
        if (keep_old) return;
    }
    p->active = s;
    s->opened_ms = hs_mono_ms();
    pthread_mutex_lock(&t->mu);
    p->connected = true;
    if (p->ever_connected && !old) p->reconnects++;
    pthread_mutex_unlock(&t->mu);
    if (!old) {
        hs_log(HS_LOG_INFO, MODULE, "connected to %s (%s, %s)", p->name,
               s->dialed ? "dialed" : "accepted", s->addr);
    }
    p->ever_connected = true;
    tp_stream_pump(s);
}

static void on_hello(stream *s, const Hotstuff__V1__Hello *h) {
    hs_transport *t = s->t;
    if (s->got_hello) return tp_refuse(s, GRPC_STATUS_INVALID_ARGUMENT, "second Hello");
    if (h->protocol_version != PROTOCOL_VERSION)
        return tp_refuse(s, GRPC_STATUS_FAILED_PRECONDITION, "protocol version %u, want %u",
                         h->protocol_version, PROTOCOL_VERSION);
    if (h->chain_id != t->cfg.chain_id)
        return tp_refuse(s, GRPC_STATUS_FAILED_PRECONDITION, "chain id %llu, want %llu",
                         (unsigned long long)h->chain_id, (unsigned long long)t->cfg.chain_id);
    if (h->key.len != HS_KEY_LEN || h->challenge.len != CHALLENGE_LEN)
        return tp_refuse(s, GRPC_STATUS_INVALID_ARGUMENT,
                         "Hello: key of %zu bytes, challenge of %zu",
                         h->key.len, h->challenge.len);
    hs_key k;
    memcpy(k.b, h->key.data, HS_KEY_LEN);
    char name[8];
    tp_key_name(&k, name);
    if (s->dialed) {
        if (tp_key_cmp(&k, &s->peer->key) != 0)
            return tp_refuse(s, GRPC_STATUS_PERMISSION_DENIED, "%s answered with key %s",
                             s->peer->name, name);
    } else {
        peer *p = tp_find_peer(t, &k);
        if (!p) return tp_refuse(s, GRPC_STATUS_PERMISSION_DENIED, "key %s is not a peer", name);
        s->peer = p;
    }
    memcpy(s->their_challenge, h->challenge.data, CHALLENGE_LEN);
    s->got_hello = true;
    send_auth(s);
}

static void on_auth(stream *s, const Hotstuff__V1__Auth *a) {
    if (!s->got_hello) return tp_refuse(s, GRPC_STATUS_INVALID_ARGUMENT, "Auth before Hello");
    if (a->signature.len != HS_SIG_LEN)
        return tp_refuse(s, GRPC_STATUS_INVALID_ARGUMENT, "Auth: signature of %zu bytes",
                         a->signature.len);
    uint8_t tr[TRANSCRIPT_LEN];
    transcript(s, s->dialed ? ROLE_ACCEPTOR : ROLE_DIALER, tr);
    hs_sig sig;
    memcpy(sig.b, a->signature.data, HS_SIG_LEN);
    if (!hs_verify(&s->peer->key, tr, sizeof tr, &sig))
        return tp_refuse(s, GRPC_STATUS_UNAUTHENTICATED, "bad handshake signature from %s",
                         s->peer->name);
    on_authenticated(s);
}

static void on_message(stream *s, const Hotstuff__V1__Message *pb) {
    hs_transport *t = s->t;
    hs_msg m;
    char why[HS_MAP_REASON_MAX];
    hs_status st = hs_map_msg_from_pb(pb, &t->cfg.limits, &m, why);
    if (st == HS_ERR_NOMEM) return tp_stream_end(s, GRPC_STATUS_RESOURCE_EXHAUSTED,
                                                 "out of memory");
    if (st != HS_OK) return bad_message(s, "%s", why);
    pthread_mutex_lock(&t->mu);
    s->peer->received++;
    pthread_mutex_unlock(&t->mu);
    tp_inbox_put(t, &s->peer->key, &m);
}

/* Each transaction of the frame goes to the handler on its own; the frame's size was
 * bounded by gRPC (max_message_bytes), which bounds the batch. */
static void on_transaction(stream *s, const Hotstuff__V1__Transaction *x) {
    char reason[256];
    for (size_t i = 0; i <= x->n_batch; i++) {
        const ProtobufCBinaryData *d = i == 0 ? &x->data : &x->batch[i - 1];
        if (i == 0 && d->len == 0) continue; /* a batch-only frame */
        int code = tp_call_tx_handler(s->t, &s->peer->key, d->data, d->len, reason);
        if (code != GRPC_STATUS_OK)
            hs_log(HS_LOG_DEBUG, MODULE, "gossiped transaction from %s refused: %s",
                   s->peer->name, reason);
    }
}

/* The peer sent a message over max_message_bytes, which gRPC refused, ending the call with
 * RESOURCE_EXHAUSTED on its own: counted like any other undecodable message. gRPC does not
 * say why a call ended, so this is recognised from what was observed in gRPC 1.51 (and is
 * pinned by test_transport's "oversized" cases): on a call we accepted, a RECV_MESSAGE that
 * fails while the call is live (a cancel or a dropped connection shows up as
 * grpc_call_failed_before_recv_message instead); on a call we dialed, a failed RECV_MESSAGE
 * followed by a RESOURCE_EXHAUSTED status (when the peer refuses one of our messages, our
 * RECV_MESSAGE merely sees the end of the stream). */
static void oversized(stream *s) {
    size_t max = s->t->cfg.max_message_bytes;
    if (s->state == ST_OPEN) bad_message(s, "message over %zu bytes", max);
    else tp_refuse(s, GRPC_STATUS_RESOURCE_EXHAUSTED, "message over %zu bytes", max);
}

/* Reads the received buffer as one contiguous frame. NULL if it is not a valid message. */
static Hotstuff__V1__Frame *unpack_frame(stream *s, void **outer) {
    grpc_byte_buffer_reader r;
    *outer = NULL;
    if (!grpc_byte_buffer_reader_init(&r, s->recv_bb)) return NULL;
    grpc_slice sl = grpc_byte_buffer_reader_readall(&r);
    grpc_byte_buffer_reader_destroy(&r);
    Hotstuff__V1__Frame *f = NULL;
    size_t len = GRPC_SLICE_LENGTH(sl);
    const uint8_t *p = GRPC_SLICE_START_PTR(sl);
    if (s->dialed) {
        Hotstuff__V1__ConnectResponse *m = hotstuff__v1__connect_response__unpack(NULL, len, p);
        if (m) *outer = m, f = m->frame;
    } else {
        Hotstuff__V1__ConnectRequest *m = hotstuff__v1__connect_request__unpack(NULL, len, p);
        if (m) *outer = m, f = m->frame;
    }
    grpc_slice_unref(sl);
    return f;
}

void tp_on_recv(stream *s, bool ok) {
    s->recv_armed = false;
    if (!s->recv_bb) {
        bool failed_before = grpc_call_failed_before_recv_message(s->call);
        if (!ok && !failed_before && !s->dialed && s->state != ST_ENDING) {
            /* On a call we accepted, the receive itself failed while the call was live: gRPC
             * refused the message, which means it was over max_message_bytes (a client that
             * cancels or whose connection drops shows as failed_before_recv_message). gRPC
             * has already ended the call with RESOURCE_EXHAUSTED. On calls we dialed a
             * failed receive also means a failed connection, so oversized messages are
             * recognised by the call's status instead (on_close). */
            oversized(s);
        } else if (!ok && !failed_before) {
            s->recv_failed = true; /* dialed: the status will tell why (on_close) */
        } else if (ok && !failed_before && !s->dialed && !s->closed && s->state != ST_ENDING) {
            /* The client half-closed: finish with OK once our queued frames are out. */
            stream_set_state(s, ST_ENDING);
            stream_detach(s);
            s->want_status = true;
            tp_stream_pump(s);
        }
        return;
    }
    void *outer;
    Hotstuff__V1__Frame *f = unpack_frame(s, &outer);
    grpc_byte_buffer_destroy(s->recv_bb);
    s->recv_bb = NULL;
    if (s->state == ST_ENDING || s->closed) {
        /* nothing more is read from a stream we are ending */
    } else if (!f) {
        if (s->state == ST_OPEN) bad_message(s, "undecodable frame");
        else tp_refuse(s, GRPC_STATUS_INVALID_ARGUMENT, "undecodable frame");
    } else if (s->state == ST_HANDSHAKE) {
        if (f->kind_case == HOTSTUFF__V1__FRAME__KIND_HELLO && f->hello) on_hello(s, f->hello);
        else if (f->kind_case == HOTSTUFF__V1__FRAME__KIND_AUTH && f->auth) on_auth(s, f->auth);
        else tp_refuse(s, GRPC_STATUS_INVALID_ARGUMENT, "frame kind %d before the handshake",
                       (int)f->kind_case);
    } else if (f->kind_case == HOTSTUFF__V1__FRAME__KIND_MESSAGE) {
        on_message(s, f->message);
    } else if (f->kind_case == HOTSTUFF__V1__FRAME__KIND_TRANSACTION && f->transaction) {
        on_transaction(s, f->transaction);
    } else {
        bad_message(s, "frame kind %d after the handshake", (int)f->kind_case);
    }
    if (outer) protobuf_c_message_free_unpacked(outer, NULL);
    tp_stream_arm_recv(s);
}

void tp_on_close(stream *s) {
    if (s->dialed && s->recv_failed && s->state != ST_ENDING &&
        s->status == GRPC_STATUS_RESOURCE_EXHAUSTED) {
        /* Our own gRPC failed a receive and ended the call: the peer's message was over the
         * limit. (When the peer ends the call with that status because it refused one of
         * ours, our receive just sees the end of the stream.) */
        oversized(s);
    }
    s->closed = true;
    if (s->dialed) {
        char *d = grpc_slice_to_c_string(s->details);
        /* Failed dials repeat with backoff while a peer is down: keep them out of info logs. */
        bool quiet = s->status == GRPC_STATUS_UNAVAILABLE && !s->peer->active &&
                     s->state == ST_HANDSHAKE;
        hs_log(quiet ? HS_LOG_DEBUG : HS_LOG_INFO, MODULE, "stream to %s ended: %s %s",
               s->peer->name, hs_grpc_code_name(s->status), d ? d : "");
        gpr_free(d);
    } else if (s->cancelled && s->peer && s->state == ST_OPEN) {
        hs_log(HS_LOG_INFO, MODULE, "stream from %s cancelled", s->peer->name);
    }
    /* Batches still pending (RECV, SEND) complete on their own now that the call is over. */
    stream_detach(s);
}

/* ------------------------------------------------------------------------------------------ */
/* Dialing (CQ thread).                                                                       */

static void schedule_dial(hs_transport *t, peer *p, bool failed) {
    if (!p->dial || !hs_rpc_loop_running(&t->loop)) return;
    uint64_t delay = tp_jitter(p->backoff_ms);
    if (failed) {
        p->backoff_ms *= 2;
        if (p->backoff_ms > t->cfg.reconnect_max_ms) p->backoff_ms = t->cfg.reconnect_max_ms;
    }
    p->next_dial_ms = hs_mono_ms() + delay;
}

void tp_dial(hs_transport *t, peer *p) {
    p->dial_once = false; /* the start-up dial of a higher key is never repeated */
    grpc_channel *ch = hs_rpc_channel(p->address, &t->channel_args);
    grpc_call *call =
        grpc_channel_create_call(ch, NULL, GRPC_PROPAGATE_DEFAULTS, t->loop.srv.cq,
                                 grpc_slice_from_static_string(METHOD_CONNECT), NULL,
                                 gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    stream *s = call ? tp_stream_new(t, call, true) : NULL;
    if (!s) {
        if (call) grpc_call_unref(call);
        grpc_channel_destroy(ch);
        schedule_dial(t, p, true);
        return;
    }
    s->channel = ch;
    s->peer = p;
    snprintf(s->addr, sizeof s->addr, "%.63s", p->address);
    p->dialing = s;

    grpc_op ops[2];
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[0].data.recv_status_on_client.trailing_metadata = &s->trail_md;
    ops[0].data.recv_status_on_client.status = &s->status;
    ops[0].data.recv_status_on_client.status_details = &s->details;
    ops[0].data.recv_status_on_client.error_string = &s->error_string;
    if (!tp_start_batch(s, ops, 1, &s->t_close)) {
        /* Without its close event the stream would never be freed: do it now. */
        p->dialing = NULL;
        s->closed = true;
        tp_stream_free(s);
        schedule_dial(t, p, true);
        return;
    }
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[1].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[1].data.recv_initial_metadata.recv_initial_metadata = &s->init_md;
    tp_start_batch(s, ops, 2, &s->t_md);
    tp_stream_arm_recv(s);
    tp_send_hello(s);
}
