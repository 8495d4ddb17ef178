/* server/replica/service.c - the replica port's calls other than Connect (CQ thread): the
 * acceptors, SubmitTransaction, UNIMPLEMENTED for unknown methods, and the hand-over of health
 * and reflection calls to net/services.h. */
#include "replica/internal.h"

/* ------------------------------------------------------------------------------------------ */
/* Server side (CQ thread).                                                                   */

/* The registered methods, in accept_kind order (the generic acceptor takes the rest).
 * payload: the request arrives with the call. */
const hs_rpc_method tp_methods[ACCEPT_GENERIC] = {
    [ACCEPT_CONNECT] = {METHOD_CONNECT, false},
    [ACCEPT_SUBMIT] = {METHOD_SUBMIT, true},
    [ACCEPT_HEALTH_CHECK] = {HS_HEALTH_CHECK_METHOD, true},
    [ACCEPT_HEALTH_WATCH] = {HS_HEALTH_WATCH_METHOD, true},
    [ACCEPT_REFLECTION_V1] = {HS_REFLECTION_V1_METHOD, false},
    [ACCEPT_REFLECTION_V1ALPHA] = {HS_REFLECTION_V1ALPHA_METHOD, false},
};

void tp_acceptor_arm(hs_transport *t, acceptor *a) {
    if (!hs_rpc_loop_running(&t->loop)) return;
    assert(!a->armed); /* one request per acceptor at a time */
    a->call = NULL;
    a->payload = NULL;
    grpc_metadata_array_init(&a->md);
    grpc_call_details_init(&a->details);
    grpc_server *srv = t->loop.srv.server;
    grpc_completion_queue *cq = t->loop.srv.cq;
    grpc_call_error e;
    if (a->kind == ACCEPT_GENERIC)
        e = grpc_server_request_call(srv, &a->call, &a->details, &a->md, cq, cq, &a->t);
    else
        e = grpc_server_request_registered_call(srv, t->rm[a->kind], &a->call, &a->deadline,
                                                &a->md,
                                                tp_methods[a->kind].payload ? &a->payload : NULL,
                                                cq, cq, &a->t);
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
    if (!hs_rpc_loop_running(&t->loop)) /* matched just before the server shut down */
        return tp_stream_end(s, GRPC_STATUS_UNAVAILABLE, "shutting down");
    if (t->n_handshaking_inbound > HANDSHAKING_SLACK + 2 * t->n_peers)
        return tp_refuse(s, GRPC_STATUS_RESOURCE_EXHAUSTED, "too many streams in handshake");
    tp_stream_arm_recv(s);
    tp_send_hello(s);
}

/* Replies to a unary call with an optional message and a status, then forgets it. */
static void unary_reply(hs_transport *t, grpc_call *call, grpc_byte_buffer *reply,
                        grpc_status_code code, const char *msg) {
    hs_svc_reply(&t->svc, call, reply, code, msg ? msg : "");
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

void tp_on_accept(acceptor *a, bool ok) {
    hs_transport *t = a->tp;
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
    case ACCEPT_HEALTH_CHECK: hs_svc_accept(&t->svc, HS_SVC_CHECK, call, payload); break;
    case ACCEPT_HEALTH_WATCH: hs_svc_accept(&t->svc, HS_SVC_WATCH, call, payload); break;
    case ACCEPT_REFLECTION_V1:
    case ACCEPT_REFLECTION_V1ALPHA: hs_svc_accept(&t->svc, HS_SVC_REFLECTION, call, NULL); break;
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
