/* client/admin_client.c - see admin_client.h. Each call is an hs_rpc_call (net/call.h, the
 * sequence of grpc-core.md §6); this file adds the channel, connection waits and the
 * operator-readable description of failures. */
#include "admin_client.h"

#include "net/call.h"
#include "net/pb.h"
#include "net/rpc.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>

#define RECV_LIMIT (64 << 20) /* the admin service sends up to 64 MiB */
#define GRACE_MS HS_CALL_GRACE_MS /* beyond a wait's deadline before it is given up */

struct hsc_client {
    grpc_channel *ch;
    char target[256];
};

struct hsc_stream {
    hsc_client *c;
    hs_rpc_call *call;
};

static gpr_timespec deadline_of(int64_t timeout_ms) {
    if (timeout_ms < 0) return gpr_inf_future(GPR_CLOCK_REALTIME);
    return gpr_time_add(gpr_now(GPR_CLOCK_REALTIME),
                        gpr_time_from_millis(timeout_ms, GPR_TIMESPAN));
}

hsc_client *hsc_open(const char *target) {
    hsc_client *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    snprintf(c->target, sizeof c->target, "%s", target);
    grpc_init();
    grpc_arg args[] = {
        {GRPC_ARG_INTEGER, GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, {.integer = RECV_LIMIT}},
        /* Our own subchannel: a fresh connection attempt for each client. */
        {GRPC_ARG_INTEGER, GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, {.integer = 1}},
        /* Fail fast on a refused connection instead of backing off for a second. */
        {GRPC_ARG_INTEGER, GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, {.integer = 100}},
    };
    grpc_channel_args ca = {sizeof args / sizeof args[0], args};
    c->ch = hs_rpc_channel(c->target, &ca);
    return c;
}

void hsc_close(hsc_client *c) {
    if (!c) return;
    grpc_channel_destroy(c->ch);
    free(c);
    grpc_shutdown();
}

const char *hsc_target(const hsc_client *c) {
    return c->target;
}

bool hsc_wait_connected(hsc_client *c, int64_t timeout_ms) {
    gpr_timespec deadline = deadline_of(timeout_ms);
    grpc_completion_queue *cq = grpc_completion_queue_create_for_pluck(NULL);
    int tag;
    bool ready = false;
    for (;;) {
        grpc_connectivity_state s = grpc_channel_check_connectivity_state(c->ch, 1);
        if (s == GRPC_CHANNEL_READY) {
            ready = true;
            break;
        }
        /* A failed attempt: the caller's call will fail fast and say why. */
        if (s == GRPC_CHANNEL_SHUTDOWN || s == GRPC_CHANNEL_TRANSIENT_FAILURE) break;
        if (gpr_time_cmp(gpr_now(GPR_CLOCK_REALTIME), deadline) >= 0) break;
        grpc_channel_watch_connectivity_state(c->ch, s, deadline, cq, &tag);
        grpc_event ev = grpc_completion_queue_pluck(
            cq, &tag, gpr_time_add(deadline, gpr_time_from_millis(GRACE_MS, GPR_TIMESPAN)),
            NULL);
        if (ev.type != GRPC_OP_COMPLETE || !ev.success) break; /* deadline */
    }
    grpc_completion_queue_shutdown(cq);
    while (grpc_completion_queue_pluck(cq, NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
           GRPC_QUEUE_SHUTDOWN) {
    }
    grpc_completion_queue_destroy(cq);
    return ready;
}

/* ---- calls (net/call.h; a unary call is a stream of one message) ---- */

ProtobufCMessage *hsc_unpack(const ProtobufCMessageDescriptor *d, grpc_byte_buffer *bb) {
    return hs_pb_unpack(d, bb);
}

hsc_stream *hsc_stream_open(hsc_client *c, const char *method, const ProtobufCMessage *req,
                            int64_t timeout_ms) {
    hsc_stream *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->c = c;
    s->call = hs_rpc_call_open(c->ch, method, req, true, timeout_ms);
    if (!s->call) {
        free(s);
        return NULL;
    }
    return s;
}

ProtobufCMessage *hsc_stream_next(hsc_stream *s, const ProtobufCMessageDescriptor *d) {
    return hs_rpc_call_recv(s->call, d);
}

void hsc_stream_cancel(hsc_stream *s) {
    hs_rpc_call_cancel(s->call);
}

grpc_status_code hsc_stream_finish(hsc_stream *s, bool cancel, hsc_status *st) {
    hsc_status local;
    if (!st) st = &local;
    memset(st, 0, sizeof *st);
    st->code = hs_rpc_call_finish(s->call, cancel, st->message, sizeof st->message);
    st->never_connected =
        grpc_channel_check_connectivity_state(s->c->ch, 0) != GRPC_CHANNEL_READY;
    free(s);
    return st->code;
}

grpc_status_code hsc_unary(hsc_client *c, const char *method, const ProtobufCMessage *req,
                           const ProtobufCMessageDescriptor *resp_desc, ProtobufCMessage **resp,
                           int64_t timeout_ms, hsc_status *st) {
    hsc_status local;
    if (!st) st = &local;
    *resp = NULL;
    hsc_stream *s = hsc_stream_open(c, method, req, timeout_ms < 0 ? 0 : timeout_ms);
    if (!s) {
        memset(st, 0, sizeof *st);
        st->code = GRPC_STATUS_RESOURCE_EXHAUSTED;
        snprintf(st->message, sizeof st->message, "out of memory");
        return st->code;
    }
    ProtobufCMessage *m = hsc_stream_next(s, resp_desc);
    grpc_status_code code = hsc_stream_finish(s, false, st);
    if (code == GRPC_STATUS_OK && !m) {
        code = st->code = GRPC_STATUS_INTERNAL;
        snprintf(st->message, sizeof st->message, "the server sent no reply");
    }
    if (code != GRPC_STATUS_OK && m) {
        protobuf_c_message_free_unpacked(m, NULL);
        m = NULL;
    }
    *resp = m;
    return code;
}

/* ---- errors ---- */

const char *hsc_code_name(grpc_status_code c) {
    return hs_grpc_code_name(c);
}

int hsc_code_parse(const char *name) {
    return hs_grpc_code_parse(name);
}

static bool contains(const char *hay, const char *needle) {
    size_t n = strlen(needle);
    for (; *hay; hay++)
        if (!strncasecmp(hay, needle, n)) return true;
    return false;
}

bool hsc_unreachable(const hsc_status *st) {
    if (st->code == GRPC_STATUS_UNAVAILABLE)
        return st->never_connected || contains(st->message, "failed to connect") ||
               contains(st->message, "connection refused") || contains(st->message, "DNS");
    return st->code == GRPC_STATUS_DEADLINE_EXCEEDED && st->never_connected;
}

void hsc_describe(const hsc_client *c, const hsc_status *st, char *out, size_t cap) {
    if (!hsc_unreachable(st)) {
        snprintf(out, cap, "%s: %s", hsc_code_name(st->code),
                 st->message[0] ? st->message : "(no message)");
        return;
    }
    const char *why;
    if (contains(st->message, "connection refused")) why = "connection refused";
    else if (contains(st->message, "DNS") || contains(st->message, "resolv"))
        why = "cannot resolve the host";
    else if (st->code == GRPC_STATUS_DEADLINE_EXCEEDED) why = "no connection before the deadline";
    else if (contains(st->message, "timed out") || contains(st->message, "timeout"))
        why = "connection timed out";
    else why = "no connection";
    snprintf(out, cap, "cannot reach %s: %s (is hotstuffd running with an admin port?) [%s]",
             c->target, why, hsc_code_name(st->code));
}
