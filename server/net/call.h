/* server/net/call.h - one client call, run synchronously on its own pluck completion queue:
 * the client half of the runtime, under the admin client (client/admin_client.h), the
 * benchmark's load generator and the tests, so the call sequence of grpc-core.md §6 is
 * written once. Unary, server-streaming and client-streaming calls are all the same thing
 * here: open (with or without a first request, half-closed or not), then any number of sends
 * and receives, then finish.
 *
 * Sequence: RECV_STATUS_ON_CLIENT is started first and stays pending the whole call, so the
 * status is never missed; open then sends the initial metadata (and the request) and waits for
 * the server's initial metadata; each later batch is plucked by its own tag. A wait never
 * outlives the call's deadline by more than HS_CALL_GRACE_MS: past that the call is
 * cancelled, and the batch still waited for, so no batch is ever left on a destroyed queue.
 *
 * Threads: a call belongs to one thread; hs_rpc_call_cancel is the exception (any thread).
 * Ownership: open returns a call the caller ends with hs_rpc_call_finish (which frees it);
 * messages given are not taken; messages returned are the caller's.
 */
#ifndef HS_NET_CALL_H
#define HS_NET_CALL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <grpc/grpc.h>
#include <protobuf-c/protobuf-c.h>

#define HS_CALL_GRACE_MS 2000

typedef struct hs_rpc_call hs_rpc_call;

/* Opens method on ch; deadline timeout_ms from now (< 0: none). Sends req when not NULL and
 * half-closes when close_send. NULL only when out of memory; a call that could not start
 * ends with its status at hs_rpc_call_finish. */
hs_rpc_call *hs_rpc_call_open(grpc_channel *ch, const char *method, const ProtobufCMessage *req,
                              bool close_send, int64_t timeout_ms);
/* Sends m and waits until it is written; false once the call has failed. */
bool hs_rpc_call_send(hs_rpc_call *c, const ProtobufCMessage *m);
/* Half-closes; false once the call has failed. */
bool hs_rpc_call_close_send(hs_rpc_call *c);
/* The next message parsed as d, or NULL at the end of the stream or on a failure. A message
 * that does not parse cancels the call, and finish reports INTERNAL. */
ProtobufCMessage *hs_rpc_call_recv(hs_rpc_call *c, const ProtobufCMessageDescriptor *d);
/* Any thread: cancels the call; the owner's waits return. */
void hs_rpc_call_cancel(hs_rpc_call *c);
/* Cancels first when cancel, waits for the status, frees the call. Returns the code and puts
 * the server's message (or ours) in msg. */
grpc_status_code hs_rpc_call_finish(hs_rpc_call *c, bool cancel, char *msg, size_t cap);

#endif
