/* server/net/scall.h - the batches of one server call, written once for the calls of both
 * ports that live longer than one batch (the admin methods, admin/calls.c; health Watch and
 * reflection, net/services.c).
 *
 * The rules they share (grpc-core.md §5, §11):
 *   - hs_scall_open starts {SEND_INITIAL_METADATA, RECV_CLOSE_ON_SERVER} first, so the call's
 *     end (the client leaving, a cancel, a deadline) is always seen: `closed`.
 *   - At most one SEND_MESSAGE and one RECV_MESSAGE are out at a time (`send_busy`); the
 *     owner starts the next from the completion of the last.
 *   - One status, once (`finished`), optionally with a last message; hs_scall_cut sends it
 *     at once even past a send stuck behind flow control (a slow subscriber).
 *   - `pending` counts batches started and not completed; the owner frees its call when it
 *     reaches zero after a completion, and hs_scall_release asserts it.
 * Each function that starts a batch takes the tag its completion comes back with (the
 * owner's, net/loop.h); on the completion the owner calls the matching hs_scall_*_done first.
 *
 * Ownership: buffers passed to hs_scall_send and hs_scall_finish belong to the call from then
 * on (also when the start fails); hs_scall_recv_done hands the received one to the caller.
 * hs_scall_release frees what is left and the call's reference.
 */
#ifndef HS_NET_SCALL_H
#define HS_NET_SCALL_H

#include <stdbool.h>

#include <grpc/grpc.h>

typedef struct hs_scall {
    grpc_call *call;  /* the reference the call owns (from request_call) */
    const char *name; /* for log lines: the method's path */
    int pending;
    bool finished;    /* status sent, or the call cut */
    bool closed;      /* RECV_CLOSE_ON_SERVER completed: nothing more can be sent */
    bool send_busy;
    bool half_closed; /* the client has sent its last message */
    int cancelled;    /* RECV_CLOSE_ON_SERVER's out-parameter */
    grpc_byte_buffer *send_bb, *recv_bb, *last_bb;
} hs_scall;

/* Starts {SEND_INITIAL_METADATA, RECV_CLOSE_ON_SERVER}. false: nothing started (cancel). */
bool hs_scall_open(hs_scall *c, void *close_tag);
/* Sends bb (with GRPC_WRITE_BUFFER_HINT when more follow). false: not started, bb freed. */
bool hs_scall_send(hs_scall *c, grpc_byte_buffer *bb, bool more, void *send_tag);
/* Arms one RECV_MESSAGE into recv_bb. false: not started. */
bool hs_scall_recv(hs_scall *c, void *recv_tag);
/* The status (and last, if not NULL), once; ignored after finished or closed. A failed start
 * cancels the call instead. */
void hs_scall_finish(hs_scall *c, grpc_status_code code, const char *msg,
                     grpc_byte_buffer *last, void *status_tag);
/* The status now, cancelling what is in flight. Once, like finish. */
void hs_scall_cut(hs_scall *c, grpc_status_code code, const char *msg);

/* Completions: each takes its batch off `pending`. */
void hs_scall_close_done(hs_scall *c);
void hs_scall_send_done(hs_scall *c); /* frees the buffer sent */
/* The message received (the caller's), or NULL at the client's half-close or a failure. */
grpc_byte_buffer *hs_scall_recv_done(hs_scall *c);
void hs_scall_status_done(hs_scall *c);

/* Once pending is zero: frees the buffers left and unrefs the call. */
void hs_scall_release(hs_scall *c);

#endif
