/* server/net/services.c - see services.h.
 *
 * Each call is an hs_scall (net/scall.h): its batches follow that file's rules, and every
 * later step starts from the completion of an earlier one, so when no batch is pending nothing
 * more can happen and the call is freed.
 */
#include "net/services.h"
#include "net/scall.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "hotstuff/log.h"

#define MODULE "rpc"

enum step { S_CLOSE, S_RECV, S_SEND, S_STATUS, S_COUNT };

typedef struct svc_tag {
    hs_rpc_tag base; /* first: the loop calls base.done */
    enum step step;
    hs_svc_call *c;
} svc_tag;

struct hs_svc_call {
    hs_svc_set *set;
    hs_svc_kind kind;
    hs_scall sc;
    hs_reflection_stream *rs;            /* reflection */
    char name[HS_HEALTH_MAX_NAME + 1];   /* Watch: the entry watched */
    int last_status;                     /* Watch: last status sent, -1 before the first */
    svc_tag t[S_COUNT];
    hs_svc_call *next, *prev;
};

void hs_svc_init(hs_svc_set *s, hs_rpc_loop *loop, hs_health *health,
                 const hs_reflection *refl) {
    memset(s, 0, sizeof *s);
    s->loop = loop;
    s->health = health;
    s->refl = refl;
}

static void call_free(hs_svc_call *c) {
    hs_svc_set *s = c->set;
    if (c->prev) c->prev->next = c->next;
    else s->live = c->next;
    if (c->next) c->next->prev = c->prev;
    assert(s->n_live > 0);
    s->n_live--;
    hs_scall_release(&c->sc);
    hs_reflection_stream_free(c->rs);
    free(c);
}

static void finish(hs_svc_call *c, grpc_status_code code, const char *msg,
                   grpc_byte_buffer *bb) {
    hs_scall_finish(&c->sc, code, msg, bb, &c->t[S_STATUS]);
}

static void send_msg(hs_svc_call *c, grpc_byte_buffer *bb) {
    if (!bb) return finish(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory", NULL);
    if (!hs_scall_send(&c->sc, bb, false, &c->t[S_SEND])) grpc_call_cancel(c->sc.call, NULL);
}

static void arm_recv(hs_svc_call *c) {
    if (!hs_scall_recv(&c->sc, &c->t[S_RECV])) grpc_call_cancel(c->sc.call, NULL);
}

static void watch_pump(hs_svc_call *c) {
    if (c->sc.finished || c->sc.closed || c->sc.send_busy) return;
    int st;
    if (!hs_health_get(c->set->health, c->name, &st)) st = HS_HEALTH_SERVICE_UNKNOWN;
    if (st == c->last_status) {
        /* Stopping, and the watcher has heard the last status: end the stream cleanly, after
         * that message, rather than leave it to the cancellation. */
        if (!hs_rpc_loop_running(c->set->loop))
            finish(c, GRPC_STATUS_UNAVAILABLE, "shutting down", NULL);
        return;
    }
    c->last_status = st;
    send_msg(c, hs_health_response(st));
}

static void on_recv(hs_svc_call *c, bool ok) {
    grpc_byte_buffer *req = hs_scall_recv_done(&c->sc);
    if (!ok || !req) {
        /* A half-close (every request has had its answer once the send in flight is done),
         * or a call that is gone, which RECV_CLOSE_ON_SERVER reports. */
        if (ok && !c->sc.closed) {
            c->sc.half_closed = true;
            if (!c->sc.send_busy) finish(c, GRPC_STATUS_OK, "", NULL);
        }
    } else if (!c->sc.finished && !c->sc.closed) {
        if (!hs_rpc_loop_running(c->set->loop)) {
            finish(c, GRPC_STATUS_UNAVAILABLE, "shutting down", NULL);
        } else {
            grpc_byte_buffer *ans = hs_reflection_answer(c->set->refl, c->rs, req);
            if (!ans) finish(c, GRPC_STATUS_INVALID_ARGUMENT, "malformed ServerReflectionRequest",
                             NULL);
            else send_msg(c, ans); /* the next request is read once this answer is sent */
        }
    }
    if (req) grpc_byte_buffer_destroy(req);
}

static void on_send(hs_svc_call *c, bool ok) {
    hs_scall_send_done(&c->sc);
    if (!ok || c->sc.finished || c->sc.closed) return;
    if (c->kind == HS_SVC_WATCH) watch_pump(c); /* a change while this was in flight */
    else if (c->sc.half_closed) finish(c, GRPC_STATUS_OK, "", NULL);
    else arm_recv(c);
}

static void on_tag(hs_rpc_tag *base, bool ok) {
    svc_tag *t = (svc_tag *)base;
    hs_svc_call *c = t->c;
    switch (t->step) {
    case S_CLOSE: hs_scall_close_done(&c->sc); break;
    case S_RECV: on_recv(c, ok); break;
    case S_SEND: on_send(c, ok); break;
    case S_STATUS: hs_scall_status_done(&c->sc); break;
    default: assert(!"unknown step");
    }
    if (c->sc.pending == 0) call_free(c);
}

/* What the call does once its first batch is out. */
static void begin(hs_svc_call *c, grpc_byte_buffer *payload) {
    hs_svc_set *s = c->set;
    if (!hs_rpc_loop_running(s->loop)) /* matched just before the server shut down */
        return finish(c, GRPC_STATUS_UNAVAILABLE, "shutting down", NULL);
    switch (c->kind) {
    case HS_SVC_CHECK: {
        grpc_byte_buffer *reply = NULL;
        const char *details = NULL;
        grpc_status_code code = hs_health_check_reply(s->health, payload, &reply, &details);
        return finish(c, code, details, reply);
    }
    case HS_SVC_WATCH:
        if (!payload || !hs_health_parse_request(payload, c->name))
            return finish(c, GRPC_STATUS_INVALID_ARGUMENT, "malformed HealthCheckRequest", NULL);
        return watch_pump(c);
    case HS_SVC_REFLECTION:
        c->rs = hs_reflection_stream_new(s->refl);
        if (!c->rs) return finish(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory", NULL);
        return arm_recv(c);
    case HS_SVC_REPLY: assert(!"replies start in hs_svc_reply"); break;
    }
}

/* A call of the set with its first batch out, or NULL (then call is cancelled and released). */
static hs_svc_call *call_open(hs_svc_set *s, hs_svc_kind kind, grpc_call *call,
                              const char *name) {
    hs_svc_call *c = calloc(1, sizeof *c);
    if (!c) {
        grpc_call_cancel_with_status(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory", NULL);
        grpc_call_unref(call);
        return NULL;
    }
    c->set = s;
    c->kind = kind;
    c->sc.call = call;
    c->sc.name = name;
    c->last_status = -1;
    for (int i = 0; i < S_COUNT; i++) c->t[i] = (svc_tag){{on_tag}, (enum step)i, c};
    c->next = s->live;
    if (s->live) s->live->prev = c;
    s->live = c;
    s->n_live++;
    if (!hs_scall_open(&c->sc, &c->t[S_CLOSE])) {
        grpc_call_cancel(call, NULL);
        call_free(c);
        return NULL;
    }
    return c;
}

void hs_svc_accept(hs_svc_set *s, hs_svc_kind kind, grpc_call *call,
                   grpc_byte_buffer *payload) {
    assert(kind != HS_SVC_REPLY); /* hs_svc_reply */
    hs_svc_call *c = call_open(s, kind, call, kind == HS_SVC_REFLECTION ? "reflection" : "health");
    if (c) begin(c, payload);
    if (payload) grpc_byte_buffer_destroy(payload);
}

void hs_svc_reply(hs_svc_set *s, grpc_call *call, grpc_byte_buffer *reply,
                  grpc_status_code code, const char *msg) {
    hs_svc_call *c = call_open(s, HS_SVC_REPLY, call, "reply");
    if (c) finish(c, code, msg, reply);
    else if (reply) grpc_byte_buffer_destroy(reply);
}

bool hs_svc_flushed(const hs_svc_set *s) {
    for (const hs_svc_call *c = s->live; c; c = c->next) {
        if (c->sc.send_busy) return false;
        /* A Watch is done once its status is out: finished, and no batch but the close left. */
        if (c->kind == HS_SVC_WATCH && !c->sc.closed && (!c->sc.finished || c->sc.pending > 1))
            return false;
    }
    return true;
}

void hs_svc_pump(hs_svc_set *s) {
    uint64_t v = hs_health_version(s->health);
    if (v == s->health_version) return; /* nothing changed since the last pump */
    s->health_version = v;
    for (hs_svc_call *c = s->live; c; c = c->next)
        if (c->kind == HS_SVC_WATCH) watch_pump(c);
}
