/* server/net/pb.h - what every gRPC user of this product shares at the message level:
 * protobuf-c messages in and out of gRPC byte buffers, status-code names, and the clock the
 * runtime's deadlines use. Used by the servers (net/rpc.h and the services on it) and by the
 * admin client (client/admin_client.h), so each of these exists once.
 *
 * Ownership: hs_pb_pack returns a byte buffer the caller owns (grpc_byte_buffer_destroy);
 * hs_pb_unpack a message the caller frees (protobuf_c_message_free_unpacked). Neither takes
 * the buffer or message it is given.
 */
#ifndef HS_NET_PB_H
#define HS_NET_PB_H

#include <stdint.h>

#include <grpc/grpc.h>
#include <grpc/support/time.h>
#include <protobuf-c/protobuf-c.h>

/* m encoded into a new byte buffer. */
grpc_byte_buffer *hs_pb_pack(const ProtobufCMessage *m);
/* bb parsed as d; NULL when bb is NULL or does not parse (the caller answers
 * INVALID_ARGUMENT, or INTERNAL on a client). */
ProtobufCMessage *hs_pb_unpack(const ProtobufCMessageDescriptor *d, grpc_byte_buffer *bb);

/* "OK", "NOT_FOUND", ...; "UNKNOWN" for a code outside the table. */
const char *hs_grpc_code_name(grpc_status_code c);
/* A code from its name, case-insensitive ("not_found"); -1 when unknown. */
int hs_grpc_code_parse(const char *name);

/* Milliseconds of CLOCK_MONOTONIC, the clock of every timer of the runtime. */
uint64_t hs_mono_ms(void);
/* A gRPC deadline ms from now on the monotonic clock. */
gpr_timespec hs_deadline_in_ms(uint64_t ms);

/* Sends gRPC core's own log lines to hs_log (module "grpc"), once per process
 * (grpc-core.md pitfall 12). Any thread; idempotent. */
void hs_grpc_log_to_hs(void);

#endif
