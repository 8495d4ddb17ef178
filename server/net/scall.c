/* server/net/scall.c - see scall.h. */
#include "net/scall.h"

#include <assert.h>
#include <string.h>

#include "hotstuff/log.h"

#define MODULE "rpc"

static bool batch(hs_scall *c, const grpc_op *ops, size_t n, void *tag) {
    grpc_call_error e = grpc_call_start_batch(c->call, ops, n, tag, NULL);
    if (e != GRPC_CALL_OK) {
        hs_log(HS_LOG_ERROR, MODULE, "%s: start_batch: error %d", c->name ? c->name : "call",
               (int)e);
        return false;
    }
    c->pending++;
    return true;
}

bool hs_scall_open(hs_scall *c, void *close_tag) {
    assert(c->pending == 0 && !c->closed); /* the first batch of the call */
    grpc_op ops[2];
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[1].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    ops[1].data.recv_close_on_server.cancelled = &c->cancelled;
    return batch(c, ops, 2, close_tag);
}

bool hs_scall_send(hs_scall *c, grpc_byte_buffer *bb, bool more, void *send_tag) {
    assert(!c->send_busy && !c->send_bb); /* one SEND_MESSAGE at a time */
    if (!bb) return false;
    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_SEND_MESSAGE;
    op.flags = more ? GRPC_WRITE_BUFFER_HINT : 0;
    op.data.send_message.send_message = bb;
    c->send_bb = bb;
    if (!batch(c, &op, 1, send_tag)) {
        grpc_byte_buffer_destroy(bb);
        c->send_bb = NULL;
        return false;
    }
    c->send_busy = true;
    return true;
}

bool hs_scall_recv(hs_scall *c, void *recv_tag) {
    assert(!c->recv_bb); /* one RECV_MESSAGE at a time */
    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_RECV_MESSAGE;
    op.data.recv_message.recv_message = &c->recv_bb;
    return batch(c, &op, 1, recv_tag);
}

void hs_scall_finish(hs_scall *c, grpc_status_code code, const char *msg,
                     grpc_byte_buffer *last, void *status_tag) {
    if (c->finished || c->closed) {
        if (last) grpc_byte_buffer_destroy(last);
        return;
    }
    c->finished = true;
    grpc_slice details = grpc_slice_from_copied_string(msg ? msg : "");
    grpc_op ops[2];
    memset(ops, 0, sizeof ops);
    size_t n = 0;
    if (last) {
        assert(!c->last_bb);
        c->last_bb = last;
        ops[n].op = GRPC_OP_SEND_MESSAGE;
        ops[n++].data.send_message.send_message = last;
    }
    ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    ops[n].data.send_status_from_server.status = code;
    ops[n++].data.send_status_from_server.status_details = &details;
    if (!batch(c, ops, n, status_tag)) grpc_call_cancel(c->call, NULL);
    grpc_slice_unref(details); /* not retained past start_batch (grpc.h) */
}

void hs_scall_cut(hs_scall *c, grpc_status_code code, const char *msg) {
    if (c->finished || c->closed) return;
    c->finished = true;
    grpc_call_cancel_with_status(c->call, code, msg, NULL);
}

void hs_scall_close_done(hs_scall *c) {
    assert(c->pending > 0);
    c->pending--;
    c->closed = true;
}

void hs_scall_send_done(hs_scall *c) {
    assert(c->pending > 0 && c->send_busy);
    c->pending--;
    c->send_busy = false;
    if (c->send_bb) grpc_byte_buffer_destroy(c->send_bb);
    c->send_bb = NULL;
}

grpc_byte_buffer *hs_scall_recv_done(hs_scall *c) {
    assert(c->pending > 0);
    c->pending--;
    grpc_byte_buffer *bb = c->recv_bb;
    c->recv_bb = NULL;
    return bb;
}

void hs_scall_status_done(hs_scall *c) {
    assert(c->pending > 0);
    c->pending--;
}

void hs_scall_release(hs_scall *c) {
    assert(c->pending == 0); /* a batch still out would complete into freed memory */
    if (c->send_bb) grpc_byte_buffer_destroy(c->send_bb);
    if (c->recv_bb) grpc_byte_buffer_destroy(c->recv_bb);
    if (c->last_bb) grpc_byte_buffer_destroy(c->last_bb);
    if (c->call) grpc_call_unref(c->call);
    memset(c, 0, sizeof *c);
}
