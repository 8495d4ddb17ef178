/* client/admin_client.h - a small synchronous gRPC client for hotstuffd's admin port
 * (hotstuff.v1.Admin, grpc.health.v1.Health) and, for compatibility, its replica port.
 * Used by hotstuffctl; usable by tests.
 *
 * One channel per client, one pluck completion queue per call. Every call has a deadline;
 * a stream may have none (timeout_ms < 0), in which case it lasts until the server ends it or
 * the caller cancels it. Messages are protobuf-c messages.
 *
 * Errors: every call fills an hsc_status (gRPC code and the server's message). hsc_describe
 * turns a failure into one operator-readable line: an unreachable server is reported as
 * such ("cannot reach HOST:PORT: connection refused (is hotstuffd running with an admin
 * port?)"), anything else as "CODE: message".
 *
 * Threads: a client and its streams belong to one thread. grpc_init/grpc_shutdown are paired
 * by hsc_open/hsc_close.
 */
#ifndef HS_CLIENT_ADMIN_CLIENT_H
#define HS_CLIENT_ADMIN_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <grpc/grpc.h>
#include <protobuf-c/protobuf-c.h>

#define HSC_ADMIN(m) "/hotstuff.v1.Admin/" m

typedef struct hsc_status {
    grpc_status_code code;
    char message[512];
    bool never_connected; /* the channel never became ready during the call */
} hsc_status;

typedef struct hsc_client hsc_client;

/* A client of target ("host:port"). Connects lazily. NULL only when out of memory. */
hsc_client *hsc_open(const char *target);
void hsc_close(hsc_client *c);
const char *hsc_target(const hsc_client *c);

/* Waits until the channel is connected, at most timeout_ms; false as soon as a connection
 * attempt fails (refused, unresolvable). */
bool hsc_wait_connected(hsc_client *c, int64_t timeout_ms);

/* One unary call. Returns st->code; on OK *resp is the reply (free with
 * protobuf_c_message_free_unpacked), else NULL. */
grpc_status_code hsc_unary(hsc_client *c, const char *method, const ProtobufCMessage *req,
                           const ProtobufCMessageDescriptor *resp_desc, ProtobufCMessage **resp,
                           int64_t timeout_ms, hsc_status *st);

/* A server-streaming call: one request, then messages until the end. */
typedef struct hsc_stream hsc_stream;
hsc_stream *hsc_stream_open(hsc_client *c, const char *method, const ProtobufCMessage *req,
                            int64_t timeout_ms);
/* The next message, or NULL at the end of the stream (then call hsc_stream_finish). A
 * message that does not parse also ends the stream (INTERNAL). */
ProtobufCMessage *hsc_stream_next(hsc_stream *s, const ProtobufCMessageDescriptor *d);
/* Cancels the call from any thread (the owner's hsc_stream_next then returns NULL); the
 * owner still calls hsc_stream_finish. */
void hsc_stream_cancel(hsc_stream *s);
/* Cancels the call when `cancel`, waits for its status, frees the stream. Returns the status
 * code; a malformed message seen by hsc_stream_next overrides an OK status. */
grpc_status_code hsc_stream_finish(hsc_stream *s, bool cancel, hsc_status *st);

/* A received message parsed as d, or NULL if it does not parse (bb stays the caller's). */
ProtobufCMessage *hsc_unpack(const ProtobufCMessageDescriptor *d, grpc_byte_buffer *bb);

/* "OUT_OF_RANGE" etc. */
const char *hsc_code_name(grpc_status_code c);
/* Parses a code name ("NOT_FOUND", "not_found"); -1 if unknown. */
int hsc_code_parse(const char *name);

/* One line describing a failed call (no trailing newline): see the header comment. */
void hsc_describe(const hsc_client *c, const hsc_status *st, char *out, size_t cap);
/* Whether the failure means the server could not be reached at all. */
bool hsc_unreachable(const hsc_status *st);

#endif
