/* client/admin_client.c - see admin_client.h. The call sequences are those of
 * /work/shared/design/grpc-core.md §6: the status batch is started first and stays pending all
 * call long; every other batch is plucked by its own tag. */
#include "admin_client.h"

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
#define GRACE_MS 2000         /* beyond a call's deadline before its CQ is abandoned */

struct hsc_client {
    grpc_channel *ch;
    char target[256];
};

struct hsc_stream {
    hsc_client *c;
    grpc_completion_queue *cq;
    grpc_call *call;
    gpr_timespec deadline;
    grpc_metadata_array init_md, trail_md;
    grpc_status_code code;
    grpc_slice details;
    const char *error_string;
    bool bad_message;
    bool status_pending; /* the status batch has not been plucked yet */
    int t_status, t_start, t_recv;
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

/* ---- messages ---- */

static grpc_byte_buffer *pack(const ProtobufCMessage *m) {
    size_t n = protobuf_c_message_get_packed_size(m);
    grpc_slice s = grpc_slice_malloc(n);
    protobuf_c_message_pack(m, GRPC_SLICE_START_PTR(s));
    grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&s, 1);
    grpc_slice_unref(s);
    return bb;
}

ProtobufCMessage *hsc_unpack(const ProtobufCMessageDescriptor *d, grpc_byte_buffer *bb) {
    return hs_pb_unpack(d, bb);
}

/* ---- streams (and unary calls, which are streams of one message) ---- */

static bool pluck(hsc_stream *s, void *tag) {
    gpr_timespec limit = gpr_time_cmp(s->deadline, gpr_inf_future(GPR_CLOCK_REALTIME)) == 0
                             ? s->deadline
                             : gpr_time_add(s->deadline,
                                            gpr_time_from_millis(GRACE_MS, GPR_TIMESPAN));
    grpc_event ev = grpc_completion_queue_pluck(s->cq, tag, limit, NULL);
    if (ev.type == GRPC_OP_COMPLETE) return ev.success;
    /* The CQ did not deliver by the deadline (should not happen: the call ends by then).
     * Cancel, and wait for the batch so it is never left pending on a destroyed queue. */
    grpc_call_cancel(s->call, NULL);
    grpc_completion_queue_pluck(s->cq, tag, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    return false;
}

hsc_stream *hsc_stream_open(hsc_client *c, const char *method, const ProtobufCMessage *req,
                            int64_t timeout_ms) {
    hsc_stream *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->c = c;
    s->code = GRPC_STATUS_UNKNOWN;
    s->details = grpc_empty_slice();
    s->deadline = deadline_of(timeout_ms);
    s->cq = grpc_completion_queue_create_for_pluck(NULL);
    s->call = grpc_channel_create_call(c->ch, NULL, GRPC_PROPAGATE_DEFAULTS, s->cq,
                                       grpc_slice_from_static_string(method), NULL, s->deadline,
                                       NULL);
    grpc_metadata_array_init(&s->init_md);
    grpc_metadata_array_init(&s->trail_md);
    grpc_op st;
    memset(&st, 0, sizeof st);
    st.op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    st.data.recv_status_on_client.trailing_metadata = &s->trail_md;
    st.data.recv_status_on_client.status = &s->code;
    st.data.recv_status_on_client.status_details = &s->details;
    st.data.recv_status_on_client.error_string = &s->error_string;
    if (grpc_call_start_batch(s->call, &st, 1, &s->t_status, NULL) == GRPC_CALL_OK)
        s->status_pending = true;
    grpc_byte_buffer *bb = pack(req);
    grpc_op ops[4];
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[1].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[1].data.recv_initial_metadata.recv_initial_metadata = &s->init_md;
    ops[2].op = GRPC_OP_SEND_MESSAGE;
    ops[2].data.send_message.send_message = bb;
    ops[3].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    /* Completes once the request is sent and the server's initial metadata arrived (which
     * may come with its first message), or when the call fails. */
    if (grpc_call_start_batch(s->call, ops, 4, &s->t_start, NULL) == GRPC_CALL_OK)
        (void)pluck(s, &s->t_start);
    else
        grpc_call_cancel(s->call, NULL);
    grpc_byte_buffer_destroy(bb);
    return s;
}

ProtobufCMessage *hsc_stream_next(hsc_stream *s, const ProtobufCMessageDescriptor *d) {
    if (s->bad_message) return NULL;
    grpc_byte_buffer *bb = NULL;
    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_RECV_MESSAGE;
    op.data.recv_message.recv_message = &bb;
    if (grpc_call_start_batch(s->call, &op, 1, &s->t_recv, NULL) != GRPC_CALL_OK) return NULL;
    bool ok = pluck(s, &s->t_recv);
    ProtobufCMessage *m = NULL;
    if (ok && bb) {
        m = hsc_unpack(d, bb);
        if (!m) {
            s->bad_message = true;
            grpc_call_cancel(s->call, NULL);
        }
    }
    if (bb) grpc_byte_buffer_destroy(bb);
    return m;
}

void hsc_stream_cancel(hsc_stream *s) {
    grpc_call_cancel(s->call, NULL); /* thread-safe in gRPC core */
}

grpc_status_code hsc_stream_finish(hsc_stream *s, bool cancel, hsc_status *st) {
    if (cancel) grpc_call_cancel(s->call, NULL);
    if (s->status_pending) pluck(s, &s->t_status);
    grpc_status_code code = s->status_pending ? s->code : GRPC_STATUS_INTERNAL;
    if (st) {
        memset(st, 0, sizeof *st);
        char *d = grpc_slice_to_c_string(s->details);
        snprintf(st->message, sizeof st->message, "%s",
                 s->status_pending ? d : "cannot start the call");
        gpr_free(d);
        if (s->bad_message && code == GRPC_STATUS_OK) {
            code = GRPC_STATUS_INTERNAL;
            snprintf(st->message, sizeof st->message, "malformed message from the server");
        }
        st->code = code;
        st->never_connected =
            grpc_channel_check_connectivity_state(s->c->ch, 0) != GRPC_CHANNEL_READY;
    }
    grpc_slice_unref(s->details);
    gpr_free((void *)s->error_string);
    grpc_metadata_array_destroy(&s->init_md);
    grpc_metadata_array_destroy(&s->trail_md);
    grpc_call_unref(s->call);
    grpc_completion_queue_shutdown(s->cq);
    while (grpc_completion_queue_pluck(s->cq, NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL)
               .type != GRPC_QUEUE_SHUTDOWN) {
    }
    grpc_completion_queue_destroy(s->cq);
    free(s);
    return code;
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
