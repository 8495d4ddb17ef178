/* server/net/call.c - see call.h. */
#include "net/call.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/support/alloc.h>
#include <grpc/support/time.h>

#include "net/pb.h"

struct hs_rpc_call {
    grpc_completion_queue *cq;
    grpc_call *call;
    gpr_timespec deadline;
    grpc_metadata_array init_md, trail_md;
    grpc_status_code code;
    grpc_slice details;
    const char *error_string;
    bool status_pending; /* the status batch is out and not plucked yet */
    bool failed;         /* a batch failed: the call is over, only its status is left */
    bool bad_message;
    /* tags: only their addresses matter (a pluck queue is waited on by tag) */
    char t_status, t_start, t_send, t_recv;
};

static gpr_timespec deadline_of(int64_t timeout_ms) {
    if (timeout_ms < 0) return gpr_inf_future(GPR_CLOCK_REALTIME);
    return gpr_time_add(gpr_now(GPR_CLOCK_REALTIME),
                        gpr_time_from_millis(timeout_ms, GPR_TIMESPAN));
}

/* Waits for tag's batch. Past the deadline and the grace the call is cancelled and the batch
 * still waited for (it completes at once then), so it never outlives the queue. */
static bool pluck(hs_rpc_call *c, void *tag) {
    gpr_timespec limit = gpr_time_cmp(c->deadline, gpr_inf_future(GPR_CLOCK_REALTIME)) == 0
                             ? c->deadline
                             : gpr_time_add(c->deadline,
                                            gpr_time_from_millis(HS_CALL_GRACE_MS, GPR_TIMESPAN));
    grpc_event ev = grpc_completion_queue_pluck(c->cq, tag, limit, NULL);
    if (ev.type != GRPC_OP_COMPLETE) {
        grpc_call_cancel(c->call, NULL);
        ev = grpc_completion_queue_pluck(c->cq, tag, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    }
    return ev.type == GRPC_OP_COMPLETE && ev.success;
}

/* Starts ops as one batch and waits for it; false (and the call failed) on any failure. */
static bool run_batch(hs_rpc_call *c, const grpc_op *ops, size_t n, void *tag) {
    if (c->failed) return false;
    if (grpc_call_start_batch(c->call, ops, n, tag, NULL) != GRPC_CALL_OK || !pluck(c, tag)) {
        c->failed = true;
        return false;
    }
    return true;
}

hs_rpc_call *hs_rpc_call_open(grpc_channel *ch, const char *method, const ProtobufCMessage *req,
                              bool close_send, int64_t timeout_ms) {
    hs_rpc_call *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->code = GRPC_STATUS_UNKNOWN;
    c->details = grpc_empty_slice();
    c->deadline = deadline_of(timeout_ms);
    c->cq = grpc_completion_queue_create_for_pluck(NULL);
    c->call = grpc_channel_create_call(ch, NULL, GRPC_PROPAGATE_DEFAULTS, c->cq,
                                       grpc_slice_from_static_string(method), NULL, c->deadline,
                                       NULL);
    grpc_metadata_array_init(&c->init_md);
    grpc_metadata_array_init(&c->trail_md);
    grpc_op st;
    memset(&st, 0, sizeof st);
    st.op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    st.data.recv_status_on_client.trailing_metadata = &c->trail_md;
    st.data.recv_status_on_client.status = &c->code;
    st.data.recv_status_on_client.status_details = &c->details;
    st.data.recv_status_on_client.error_string = &c->error_string;
    c->status_pending = grpc_call_start_batch(c->call, &st, 1, &c->t_status, NULL) == GRPC_CALL_OK;
    c->failed = !c->status_pending;

    grpc_byte_buffer *bb = req ? hs_pb_pack(req) : NULL;
    grpc_op ops[4];
    memset(ops, 0, sizeof ops);
    size_t n = 0;
    ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[n].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[n++].data.recv_initial_metadata.recv_initial_metadata = &c->init_md;
    if (bb) {
        ops[n].op = GRPC_OP_SEND_MESSAGE;
        ops[n++].data.send_message.send_message = bb;
    }
    if (close_send) ops[n++].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    /* Completes once the request is out and the server's initial metadata is in (which may
     * come with its first message), or when the call fails. */
    (void)run_batch(c, ops, n, &c->t_start);
    if (bb) grpc_byte_buffer_destroy(bb);
    return c;
}

bool hs_rpc_call_send(hs_rpc_call *c, const ProtobufCMessage *m) {
    grpc_byte_buffer *bb = hs_pb_pack(m);
    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_SEND_MESSAGE;
    op.data.send_message.send_message = bb;
    bool ok = run_batch(c, &op, 1, &c->t_send);
    grpc_byte_buffer_destroy(bb);
    return ok;
}

bool hs_rpc_call_close_send(hs_rpc_call *c) {
    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    return run_batch(c, &op, 1, &c->t_send);
}

ProtobufCMessage *hs_rpc_call_recv(hs_rpc_call *c, const ProtobufCMessageDescriptor *d) {
    if (c->bad_message) return NULL;
    grpc_byte_buffer *bb = NULL;
    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_RECV_MESSAGE;
    op.data.recv_message.recv_message = &bb;
    ProtobufCMessage *m = NULL;
    if (run_batch(c, &op, 1, &c->t_recv) && bb) {
        m = hs_pb_unpack(d, bb);
        if (!m) {
            c->bad_message = true;
            grpc_call_cancel(c->call, NULL);
        }
    }
    if (bb) grpc_byte_buffer_destroy(bb);
    return m;
}

void hs_rpc_call_cancel(hs_rpc_call *c) {
    grpc_call_cancel(c->call, NULL); /* thread-safe in gRPC core */
}

grpc_status_code hs_rpc_call_finish(hs_rpc_call *c, bool cancel, char *msg, size_t cap) {
    if (cancel) grpc_call_cancel(c->call, NULL);
    if (c->status_pending) (void)pluck(c, &c->t_status);
    grpc_status_code code = c->status_pending ? c->code : GRPC_STATUS_INTERNAL;
    const char *why = c->status_pending ? NULL : "cannot start the call";
    if (c->bad_message && code == GRPC_STATUS_OK) {
        code = GRPC_STATUS_INTERNAL;
        why = "malformed message from the server";
    }
    if (msg && cap) {
        char *d = grpc_slice_to_c_string(c->details);
        snprintf(msg, cap, "%s", why ? why : d);
        gpr_free(d);
    }
    grpc_slice_unref(c->details);
    gpr_free((void *)c->error_string);
    grpc_metadata_array_destroy(&c->init_md);
    grpc_metadata_array_destroy(&c->trail_md);
    grpc_call_unref(c->call);
    grpc_completion_queue_shutdown(c->cq);
    while (grpc_completion_queue_pluck(c->cq, NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL)
               .type != GRPC_QUEUE_SHUTDOWN) {
    }
    grpc_completion_queue_destroy(c->cq);
    free(c);
    return code;
}
