/* server/admin/calls.c - the admin service's call state machine (CQ thread): requests, start, send,
 * receive, finish, and the dispatch of each method; SubmitTransactions. Health and reflection
 * calls are handed to net/services.h as they arrive. */
#include "admin/internal.h"

/* payload: the request arrives with the call (unary and server-streaming). */
const hs_rpc_method ad_methods[M_GENERIC] = {
    [M_STATUS] = {"/hotstuff.v1.Admin/GetStatus", true},
    [M_BLOCK] = {"/hotstuff.v1.Admin/GetBlock", true},
    [M_LIST] = {"/hotstuff.v1.Admin/ListBlocks", true},
    [M_VS] = {"/hotstuff.v1.Admin/GetValidatorSet", true},
    [M_STATE] = {"/hotstuff.v1.Admin/GetState", true},
    [M_SUBMIT] = {"/hotstuff.v1.Admin/SubmitTransaction", true},
    [M_SUBMITS] = {"/hotstuff.v1.Admin/SubmitTransactions", false},
    [M_SUBSCRIBE] = {"/hotstuff.v1.Admin/Subscribe", true},
    [M_HCHECK] = {HS_HEALTH_CHECK_METHOD, true},
    [M_HWATCH] = {HS_HEALTH_WATCH_METHOD, true},
    [M_REFL_V1] = {HS_REFLECTION_V1_METHOD, false},
    [M_REFL_V1ALPHA] = {HS_REFLECTION_V1ALPHA_METHOD, false},
};

/* ------------------------------------------------------------------------------------------ */
/* Call lifecycle.                                                                            */

static acall *call_new(hs_admin *a, enum method m) {
    acall *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->a = a;
    c->m = m;
    c->sc.name = m < M_GENERIC ? ad_methods[m].path : "(unknown method)";
    tag *tags[] = {&c->t_new, &c->t_send, &c->t_recv, &c->t_close, &c->t_status};
    enum tag_kind kinds[] = {T_NEW, T_SEND, T_RECV, T_CLOSE, T_STATUS};
    for (int i = 0; i < 5; i++) *tags[i] = (tag){{ad_on_tag}, kinds[i], c};
    grpc_metadata_array_init(&c->md);
    grpc_call_details_init(&c->details);
    return c;
}

static void unsubscribe(hs_admin *a, acall *c) {
    if (!c->sub) return;
    pthread_mutex_lock(&a->sub_mu);
    for (subscriber **p = &a->subs; *p; p = &(*p)->next) {
        if (*p == c->sub) {
            *p = c->sub->next;
            break;
        }
    }
    pthread_mutex_unlock(&a->sub_mu);
    free(c->sub->ring);
    free(c->sub);
    c->sub = NULL;
    assert(a->n_subscribers > 0);
    a->n_subscribers--;
    pthread_mutex_lock(&a->stats_mu);
    a->stats.subscribers = a->n_subscribers;
    pthread_mutex_unlock(&a->stats_mu);
}

static void call_free(acall *c) {
    hs_admin *a = c->a;
    if (c->live) {
        if (c->prev) c->prev->next = c->next;
        else a->live = c->next;
        if (c->next) c->next->prev = c->prev;
        assert(a->n_live > 0);
        a->n_live--;
    }
    unsubscribe(a, c);
    if (c->payload) grpc_byte_buffer_destroy(c->payload);
    grpc_metadata_array_destroy(&c->md);
    grpc_call_details_destroy(&c->details);
    hs_scall_release(&c->sc); /* asserts no batch is out */
    free(c);
}

void ad_maybe_free(acall *c) {
    if (c->sc.pending == 0) call_free(c);
}

/* Ends a call with a status (and an optional last message). At most once; a send in flight
 * finishes first (one SEND_MESSAGE per call at a time), which on_send notices. */
void ad_finish_with(acall *c, grpc_status_code code, const char *msg, grpc_byte_buffer *bb) {
    hs_scall_finish(&c->sc, code, msg, bb, &c->t_status);
}

void ad_finish(acall *c, grpc_status_code code, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    ad_finish_with(c, code, msg, NULL);
}

/* Ends a call that may have a send stuck behind flow control (a slow subscriber): the
 * status goes out at once and the pending batches fail. */
void ad_cut(acall *c, grpc_status_code code, const char *msg) {
    hs_scall_cut(&c->sc, code, msg);
}

void ad_reply_pb(acall *c, const ProtobufCMessage *m) {
    grpc_byte_buffer *bb = hs_pb_pack(m);
    ad_finish_with(c, GRPC_STATUS_OK, "", bb);
}

void ad_send_msg(acall *c, grpc_byte_buffer *bb, bool more) {
    if (!hs_scall_send(&c->sc, bb, more, &c->t_send))
        ad_cut(c, GRPC_STATUS_INTERNAL, "send failed");
}

static void arm_recv(acall *c) {
    if (!hs_scall_recv(&c->sc, &c->t_recv)) ad_cut(c, GRPC_STATUS_INTERNAL, "recv failed");
}

/* ------------------------------------------------------------------------------------------ */
/* SubmitTransactions.                                                                        */

static void submits_on_recv(acall *c, grpc_byte_buffer *bb) {
    Hotstuff__V1__SubmitTransactionsRequest *q = (Hotstuff__V1__SubmitTransactionsRequest *)
        hs_pb_unpack(&hotstuff__v1__submit_transactions_request__descriptor, bb);
    if (!q) {
        ad_finish(c, GRPC_STATUS_INVALID_ARGUMENT, "malformed SubmitTransactionsRequest");
        return;
    }
    /* `transaction` first (an empty one is a rejection only when the message carries nothing
     * else, so a batch may leave it unset), then the batch in order. */
    size_t n = q->n_transactions;
    bool single = q->transaction.len > 0 || n == 0;
    for (size_t i = single ? 0 : 1; i <= n; i++) {
        const ProtobufCBinaryData *tx = i == 0 ? &q->transaction : &q->transactions[i - 1];
        char reason[256];
        hs_hash h;
        int code = ad_submit_tx(c->a, tx->data, tx->len, &h, reason);
        if (code == GRPC_STATUS_OK) c->accepted++;
        else if (c->rejected++ == 0) snprintf(c->first_err, sizeof c->first_err, "%s", reason);
    }
    protobuf_c_message_free_unpacked(&q->base, NULL);
    arm_recv(c);
}

static void submits_done(acall *c) {
    Hotstuff__V1__SubmitTransactionsResponse m = HOTSTUFF__V1__SUBMIT_TRANSACTIONS_RESPONSE__INIT;
    m.accepted = c->accepted;
    m.rejected = c->rejected;
    m.first_error = c->first_err;
    ad_reply_pb(c, &m.base);
}

/* ------------------------------------------------------------------------------------------ */
/* Dispatch.                                                                                  */


/* The operator services' methods, and what net/services.h calls them. */
static bool svc_kind(enum method m, hs_svc_kind *k) {
    switch (m) {
    case M_HCHECK: *k = HS_SVC_CHECK; return true;
    case M_HWATCH: *k = HS_SVC_WATCH; return true;
    case M_REFL_V1:
    case M_REFL_V1ALPHA: *k = HS_SVC_REFLECTION; return true;
    default: return false;
    }
}

/* Calls in progress, this service's and the operator services', against max_calls. */
static uint32_t calls_in_progress(const hs_admin *a) {
    return a->n_live + (uint32_t)hs_svc_live(&a->svc);
}

static void start_call(acall *c) {
    hs_admin *a = c->a;
    hs_svc_kind k;
    if (svc_kind(c->m, &k) && hs_rpc_loop_running(&a->loop) &&
        calls_in_progress(a) < a->cfg.max_calls) {
        ad_stat_add(a, &a->stats.calls);
        hs_svc_accept(&a->svc, k, c->sc.call, c->payload); /* which owns both from here */
        c->sc.call = NULL;
        c->payload = NULL;
        call_free(c);
        return;
    }
    if (!hs_scall_open(&c->sc, &c->t_close)) {
        grpc_call_cancel(c->sc.call, NULL);
        ad_maybe_free(c);
        return;
    }
    c->live = true;
    c->next = a->live;
    if (a->live) a->live->prev = c;
    a->live = c;
    a->n_live++;
    if (calls_in_progress(a) > a->cfg.max_calls) {
        ad_stat_add(a, &a->stats.refused_busy);
        ad_finish(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "too many calls in progress (limit %u)",
                  a->cfg.max_calls);
        return;
    }
    if (!hs_rpc_loop_running(&a->loop)) {
        ad_finish(c, GRPC_STATUS_UNAVAILABLE, "shutting down");
        return;
    }
    ad_stat_add(a, &a->stats.calls);
    switch (c->m) {
    case M_STATUS: ad_do_status(c); break;
    case M_BLOCK: ad_do_block(c); break;
    case M_LIST: ad_do_list(c); break;
    case M_VS: ad_do_vs(c); break;
    case M_STATE: ad_do_state(c); break;
    case M_SUBMIT: ad_do_submit(c); break;
    case M_SUBSCRIBE: ad_do_subscribe(c); break;
    case M_SUBMITS:
        if (!a->node.submit) ad_finish(c, GRPC_STATUS_UNIMPLEMENTED, "no transactions here");
        else arm_recv(c);
        break;
    case M_HCHECK:
    case M_HWATCH:
    case M_REFL_V1:
    case M_REFL_V1ALPHA: assert(!"handed to net/services.h above"); break;
    default: {
        char *method = grpc_slice_to_c_string(c->details.method);
        ad_finish(c, GRPC_STATUS_UNIMPLEMENTED, "method %.200s not implemented", method);
        gpr_free(method);
    }
    }
}

static void on_new(acall *c, bool ok) {
    hs_admin *a = c->a;
    assert(c->sc.pending == 1); /* the request, counted as one (ad_arm) */
    c->sc.pending--;
    assert(a->n_armed > 0);
    a->n_armed--;
    if (!ok) { /* the server is shutting down */
        call_free(c);
        return;
    }
    ad_arm(a, c->m);
    start_call(c);
}

static void on_send(acall *c, bool ok) {
    hs_scall_send_done(&c->sc);
    if (ok && c->sending_commit) {
        c->has_delivered = true;
        c->delivered = c->sending_height;
    }
    c->sending_commit = false;
    if (ok && !c->sc.finished && !c->sc.closed) {
        switch (c->m) {
        case M_LIST: ad_list_pump(c); break;
        case M_SUBSCRIBE: ad_sub_pump(c); break;
        default: break;
        }
    }
    ad_maybe_free(c);
}

static void on_recv(acall *c, bool ok) {
    grpc_byte_buffer *bb = hs_scall_recv_done(&c->sc);
    if (!ok || !bb) {
        /* Half-close, or a cancelled call: RECV_CLOSE_ON_SERVER tells them apart. */
        if (!c->sc.closed && !grpc_call_failed_before_recv_message(c->sc.call) && ok) {
            c->sc.half_closed = true;
            if (c->m == M_SUBMITS) submits_done(c);
            else if (!c->sc.send_busy) ad_finish_with(c, GRPC_STATUS_OK, "", NULL);
        }
    } else if (!c->sc.finished && !c->sc.closed) {
        assert(c->m == M_SUBMITS); /* the one client-streaming method left here */
        submits_on_recv(c, bb);
    }
    if (bb) grpc_byte_buffer_destroy(bb);
    ad_maybe_free(c);
}

void ad_on_tag(hs_rpc_tag *base, bool ok) {
    tag *t = (tag *)base;
    acall *c = t->c;
    switch (t->kind) {
    case T_NEW: on_new(c, ok); break;
    case T_SEND: on_send(c, ok); break;
    case T_RECV: on_recv(c, ok); break;
    case T_CLOSE:
        hs_scall_close_done(&c->sc);
        c->waiting = false;
        ad_maybe_free(c);
        break;
    case T_STATUS:
        hs_scall_status_done(&c->sc);
        ad_maybe_free(c);
        break;
    }
}

void ad_arm(hs_admin *a, enum method m) {
    if (!hs_rpc_loop_running(&a->loop)) return;
    acall *c = call_new(a, m);
    if (!c) {
        hs_log(HS_LOG_ERROR, MODULE, "out of memory arming %d", (int)m);
        return;
    }
    grpc_server *srv = a->loop.srv.server;
    grpc_completion_queue *cq = a->loop.srv.cq;
    grpc_call_error e;
    if (m == M_GENERIC)
        e = grpc_server_request_call(srv, &c->sc.call, &c->details, &c->md, cq, cq, &c->t_new);
    else
        e = grpc_server_request_registered_call(srv, a->rm[m], &c->sc.call, &c->deadline, &c->md,
                                                ad_methods[m].payload ? &c->payload : NULL, cq,
                                                cq, &c->t_new);
    if (e != GRPC_CALL_OK) {
        hs_log(HS_LOG_ERROR, MODULE, "request_call(%d): error %d", (int)m, (int)e);
        call_free(c);
        return;
    }
    c->sc.pending = 1; /* the request counts as one batch until on_new */
    a->n_armed++;
}
