/* server/replica/service.c - the replica port's calls other than Connect (CQ thread): the
 * acceptors, SubmitTransaction, health Check and Watch, reflection, and UNIMPLEMENTED for the rest. */
#include "replica/internal.h"

/* ------------------------------------------------------------------------------------------ */
/* Server side (CQ thread).                                                                   */

void tp_acceptor_arm(hs_transport *t, acceptor *a) {
    if (t->phase != PH_RUNNING) return;
    a->call = NULL;
    a->payload = NULL;
    grpc_metadata_array_init(&a->md);
    grpc_call_details_init(&a->details);
    grpc_call_error e;
    switch (a->kind) {
    case ACCEPT_CONNECT:
        e = grpc_server_request_registered_call(t->srv.server, t->rm[ACCEPT_CONNECT], &a->call,
                                                &a->deadline,
                                                &a->md, NULL, t->srv.cq, t->srv.cq, &a->t);
        break;
    case ACCEPT_SUBMIT:
        e = grpc_server_request_registered_call(t->srv.server, t->rm[ACCEPT_SUBMIT], &a->call,
                                                &a->deadline,
                                                &a->md, &a->payload, t->srv.cq, t->srv.cq, &a->t);
        break;
    case ACCEPT_HEALTH_CHECK:
    case ACCEPT_HEALTH_WATCH:
        e = grpc_server_request_registered_call(
            t->srv.server, t->rm[a->kind],
            &a->call, &a->deadline, &a->md, &a->payload, t->srv.cq, t->srv.cq, &a->t);
        break;
    case ACCEPT_REFLECTION_V1:
    case ACCEPT_REFLECTION_V1ALPHA:
        e = grpc_server_request_registered_call(
            t->srv.server, t->rm[a->kind],
            &a->call, &a->deadline, &a->md, NULL, t->srv.cq, t->srv.cq, &a->t);
        break;
    default:
        e = grpc_server_request_call(t->srv.server, &a->call, &a->details, &a->md, t->srv.cq,
                                     t->srv.cq,
                                     &a->t);
    }
    if (e == GRPC_CALL_OK) {
        a->armed = true;
    } else {
        hs_log(HS_LOG_ERROR, MODULE, "request_call(%d) failed: %d", (int)a->kind, (int)e);
        grpc_metadata_array_destroy(&a->md);
        grpc_call_details_destroy(&a->details);
    }
}

static void peer_addr(grpc_call *call, char *out, size_t cap) {
    char *p = grpc_call_get_peer(call);
    snprintf(out, cap, "%s", p ? p : "?");
    gpr_free(p);
}

static void accept_stream(hs_transport *t, grpc_call *call) {
    stream *s = tp_stream_new(t, call, false);
    if (!s) {
        grpc_call_cancel_with_status(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory", NULL);
        grpc_call_unref(call);
        return;
    }
    t->n_handshaking_inbound++;
    peer_addr(call, s->addr, sizeof s->addr);
    grpc_op ops[2];
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[1].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    ops[1].data.recv_close_on_server.cancelled = &s->cancelled;
    if (!tp_start_batch(s, ops, 2, &s->t_close)) {
        s->closed = true;
        tp_stream_free(s);
        return;
    }
    if (t->phase != PH_RUNNING) /* matched just before the server shut down */
        return tp_stream_end(s, GRPC_STATUS_UNAVAILABLE, "shutting down");
    if (t->n_handshaking_inbound > HANDSHAKING_SLACK + 2 * t->n_peers)
        return tp_refuse(s, GRPC_STATUS_RESOURCE_EXHAUSTED, "too many streams in handshake");
    tp_stream_arm_recv(s);
    tp_send_hello(s);
}

/* Replies to a unary call with an optional message and a status, then forgets it. */
static void unary_reply(hs_transport *t, grpc_call *call, grpc_byte_buffer *reply,
                        grpc_status_code code, const char *msg) {
    unary *u = calloc(1, sizeof *u);
    if (!u) {
        if (reply) grpc_byte_buffer_destroy(reply);
        grpc_call_cancel_with_status(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory", NULL);
        grpc_call_unref(call);
        return;
    }
    u->t = (tag){TAG_UNARY_DONE, u};
    u->call = call;
    u->reply = reply;
    grpc_slice details = grpc_slice_from_copied_string(msg ? msg : "");
    grpc_op ops[4];
    memset(ops, 0, sizeof ops);
    size_t n = 0;
    ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
    if (reply) {
        ops[n].op = GRPC_OP_SEND_MESSAGE;
        ops[n++].data.send_message.send_message = reply;
    }
    ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    ops[n].data.send_status_from_server.status = code;
    ops[n++].data.send_status_from_server.status_details = &details;
    ops[n].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    ops[n++].data.recv_close_on_server.cancelled = &u->cancelled;
    grpc_call_error e = grpc_call_start_batch(call, ops, n, &u->t, NULL);
    grpc_slice_unref(details); /* not retained past start_batch */
    if (e != GRPC_CALL_OK) {
        hs_log(HS_LOG_ERROR, MODULE, "unary reply failed: %d", (int)e);
        grpc_call_cancel(call, NULL);
        if (reply) grpc_byte_buffer_destroy(reply);
        grpc_call_unref(call);
        free(u);
        return;
    }
    t->n_unary++;
}

void tp_on_unary_done(hs_transport *t, unary *u) {
    if (u->reply) grpc_byte_buffer_destroy(u->reply);
    grpc_call_unref(u->call);
    free(u);
    assert(t->n_unary > 0);
    t->n_unary--;
}

static void handle_submit(hs_transport *t, grpc_call *call, grpc_byte_buffer *payload) {
    Hotstuff__V1__SubmitTransactionRequest *req = NULL;
    if (payload) {
        grpc_byte_buffer_reader r;
        if (grpc_byte_buffer_reader_init(&r, payload)) {
            grpc_slice sl = grpc_byte_buffer_reader_readall(&r);
            grpc_byte_buffer_reader_destroy(&r);
            req = hotstuff__v1__submit_transaction_request__unpack(NULL, GRPC_SLICE_LENGTH(sl),
                                                                   GRPC_SLICE_START_PTR(sl));
            grpc_slice_unref(sl);
        }
        grpc_byte_buffer_destroy(payload);
    }
    if (!req) return unary_reply(t, call, NULL, GRPC_STATUS_INVALID_ARGUMENT, "malformed request");
    if (req->transaction.len == 0) {
        hotstuff__v1__submit_transaction_request__free_unpacked(req, NULL);
        return unary_reply(t, call, NULL, GRPC_STATUS_INVALID_ARGUMENT, "empty transaction");
    }
    char reason[256];
    int code = tp_call_tx_handler(t, NULL, req->transaction.data, req->transaction.len, reason);
    grpc_byte_buffer *reply = NULL;
    if (code == GRPC_STATUS_OK) {
        hs_hash h;
        hs_sha256(req->transaction.data, req->transaction.len, &h);
        Hotstuff__V1__SubmitTransactionResponse resp =
            HOTSTUFF__V1__SUBMIT_TRANSACTION_RESPONSE__INIT;
        resp.transaction_hash.data = h.b;
        resp.transaction_hash.len = HS_HASH_LEN;
        reply = hs_pb_pack(&resp.base);
        reason[0] = '\0';
    }
    hotstuff__v1__submit_transaction_request__free_unpacked(req, NULL);
    unary_reply(t, call, reply, (grpc_status_code)code, reason);
}

/* ---- health and reflection (see OPERATOR SERVICES) ---- */

static void handle_health_check(hs_transport *t, grpc_call *call, grpc_byte_buffer *payload) {
    grpc_byte_buffer *reply = NULL;
    const char *details = NULL;
    grpc_status_code code = hs_health_check_reply(t->health, payload, &reply, &details);
    if (payload) grpc_byte_buffer_destroy(payload);
    unary_reply(t, call, reply, code, details);
}

static void svc_free(hs_transport *t, svc *v) {
    if (v->recv) grpc_byte_buffer_destroy(v->recv);
    if (v->send) grpc_byte_buffer_destroy(v->send);
    hs_reflection_stream_free(v->rs);
    grpc_call_unref(v->call);
    free(v);
    assert(t->n_unary > 0);
    t->n_unary--;
}

static bool svc_batch(svc *v, const grpc_op *ops, size_t n, tag *tg) {
    if (grpc_call_start_batch(v->call, ops, n, tg, NULL) != GRPC_CALL_OK) return false;
    v->pending++;
    return true;
}

/* Ends the call with a status (once). On a failed start the call is cancelled instead. */
static void svc_finish(svc *v, grpc_status_code code, const char *msg) {
    if (v->status_sent) return;
    v->status_sent = true;
    grpc_slice details = grpc_slice_from_copied_string(msg);
    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    op.data.send_status_from_server.status = code;
    op.data.send_status_from_server.status_details = &details;
    if (!svc_batch(v, &op, 1, &v->t_status)) grpc_call_cancel(v->call, NULL);
    grpc_slice_unref(details);
}

static void svc_send(svc *v, grpc_byte_buffer *bb) {
    v->send = bb;
    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_SEND_MESSAGE;
    op.data.send_message.send_message = bb;
    if (!svc_batch(v, &op, 1, &v->t_send)) grpc_call_cancel(v->call, NULL);
}

static void svc_arm_recv(svc *v) {
    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_RECV_MESSAGE;
    op.data.recv_message.recv_message = &v->recv;
    if (!svc_batch(v, &op, 1, &v->t_recv)) grpc_call_cancel(v->call, NULL);
}

/* A reflection stream (rs set) or a health Watch (request in payload). */
static void accept_svc(hs_transport *t, grpc_call *call, bool reflection,
                       grpc_byte_buffer *payload) {
    svc *v = calloc(1, sizeof *v);
    if (v && reflection && !(v->rs = hs_reflection_stream_new(t->reflection))) {
        free(v);
        v = NULL;
    }
    if (!v) {
        if (payload) grpc_byte_buffer_destroy(payload);
        grpc_call_cancel_with_status(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory", NULL);
        grpc_call_unref(call);
        return;
    }
    t->n_unary++;
    v->call = call;
    v->t_close = (tag){TAG_V_CLOSE, v};
    v->t_recv = (tag){TAG_V_RECV, v};
    v->t_send = (tag){TAG_V_SEND, v};
    v->t_status = (tag){TAG_V_STATUS, v};
    grpc_op ops[2];
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[1].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    ops[1].data.recv_close_on_server.cancelled = &v->cancelled;
    if (!svc_batch(v, ops, 2, &v->t_close)) {
        if (payload) grpc_byte_buffer_destroy(payload);
        grpc_call_cancel(call, NULL);
        svc_free(t, v);
        return;
    }
    if (t->phase != PH_RUNNING) {
        if (payload) grpc_byte_buffer_destroy(payload);
        return svc_finish(v, GRPC_STATUS_UNAVAILABLE, "shutting down");
    }
    if (reflection) return svc_arm_recv(v);
    char name[HS_HEALTH_MAX_NAME + 1];
    bool parsed = payload && hs_health_parse_request(payload, name);
    if (payload) grpc_byte_buffer_destroy(payload);
    if (!parsed) return svc_finish(v, GRPC_STATUS_INVALID_ARGUMENT, "malformed request");
    int status;
    if (!hs_health_get(t->health, name, &status)) status = HS_HEALTH_SERVICE_UNKNOWN;
    grpc_byte_buffer *bb = hs_health_response(status);
    if (!bb) return svc_finish(v, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    svc_send(v, bb); /* then nothing until the client leaves or stop cancels the call */
}

void tp_on_svc_event(hs_transport *t, tag *tg, bool ok) {
    svc *v = tg->owner;
    assert(v->pending > 0);
    v->pending--;
    switch (tg->kind) {
    case TAG_V_RECV: {
        grpc_byte_buffer *req = v->recv;
        v->recv = NULL;
        if (!ok) break; /* the call is gone */
        if (!req) { /* half-close: every request has had its answer */
            svc_finish(v, GRPC_STATUS_OK, "");
            break;
        }
        grpc_byte_buffer *ans = t->phase == PH_RUNNING
                                    ? hs_reflection_answer(t->reflection, v->rs, req)
                                    : NULL;
        grpc_byte_buffer_destroy(req);
        if (t->phase != PH_RUNNING) svc_finish(v, GRPC_STATUS_UNAVAILABLE, "shutting down");
        else if (!ans) svc_finish(v, GRPC_STATUS_INVALID_ARGUMENT, "malformed request");
        else svc_send(v, ans);
        break;
    }
    case TAG_V_SEND:
        grpc_byte_buffer_destroy(v->send);
        v->send = NULL;
        if (ok && v->rs) svc_arm_recv(v); /* one response per request, in order */
        break;
    default: break; /* TAG_V_CLOSE, TAG_V_STATUS */
    }
    if (v->pending == 0) svc_free(t, v);
}

void tp_on_accept(hs_transport *t, acceptor *a, bool ok) {
    a->armed = false;
    grpc_call *call = a->call;
    grpc_byte_buffer *payload = a->payload;
    char method[96] = "";
    if (a->kind == ACCEPT_GENERIC && ok) {
        char *m = grpc_slice_to_c_string(a->details.method);
        snprintf(method, sizeof method, "%s", m ? m : "?");
        gpr_free(m);
    }
    grpc_metadata_array_destroy(&a->md);
    grpc_call_details_destroy(&a->details);
    if (!ok) { /* the server is shutting down: the request is void, do not re-arm */
        if (payload) grpc_byte_buffer_destroy(payload);
        return;
    }
    tp_acceptor_arm(t, a); /* first, so the next call is never left waiting */
    switch (a->kind) {
    case ACCEPT_CONNECT: accept_stream(t, call); break;
    case ACCEPT_SUBMIT: handle_submit(t, call, payload); break;
    case ACCEPT_HEALTH_CHECK: handle_health_check(t, call, payload); break;
    case ACCEPT_HEALTH_WATCH: accept_svc(t, call, false, payload); break;
    case ACCEPT_REFLECTION_V1:
    case ACCEPT_REFLECTION_V1ALPHA: accept_svc(t, call, true, NULL); break;
    default: {
        char msg[160];
        snprintf(msg, sizeof msg, "method %s not implemented", method);
        hs_log(HS_LOG_INFO, MODULE, "call to unknown method %s", method);
        pthread_mutex_lock(&t->mu);
        t->stats.unimplemented_calls++;
        pthread_mutex_unlock(&t->mu);
        unary_reply(t, call, NULL, GRPC_STATUS_UNIMPLEMENTED, msg);
    }
    }
}
