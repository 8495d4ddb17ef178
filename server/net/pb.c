/* server/net/pb.c - see pb.h. */
#include "net/pb.h"

#include <pthread.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/slice.h>
#include <grpc/support/log.h>

#include "hotstuff/log.h"

grpc_byte_buffer *hs_pb_pack(const ProtobufCMessage *m) {
    size_t n = protobuf_c_message_get_packed_size(m);
    grpc_slice s = grpc_slice_malloc(n);
    protobuf_c_message_pack(m, GRPC_SLICE_START_PTR(s));
    grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&s, 1);
    grpc_slice_unref(s);
    return bb;
}

ProtobufCMessage *hs_pb_unpack(const ProtobufCMessageDescriptor *d, grpc_byte_buffer *bb) {
    grpc_byte_buffer_reader r;
    if (!bb || !grpc_byte_buffer_reader_init(&r, bb)) return NULL;
    grpc_slice s = grpc_byte_buffer_reader_readall(&r);
    grpc_byte_buffer_reader_destroy(&r);
    ProtobufCMessage *m =
        protobuf_c_message_unpack(d, NULL, GRPC_SLICE_LENGTH(s), GRPC_SLICE_START_PTR(s));
    grpc_slice_unref(s);
    return m;
}

static const char *const code_names[] = {
    "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
    "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
    "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
    "UNAUTHENTICATED"};
#define N_CODES (sizeof code_names / sizeof code_names[0])

const char *hs_grpc_code_name(grpc_status_code c) {
    return (unsigned)c < N_CODES ? code_names[c] : "UNKNOWN";
}

int hs_grpc_code_parse(const char *name) {
    for (size_t i = 0; i < N_CODES; i++)
        if (!strcasecmp(name, code_names[i])) return (int)i;
    return -1;
}

uint64_t hs_mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

gpr_timespec hs_deadline_in_ms(uint64_t ms) {
    return gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                        gpr_time_from_millis((int64_t)ms, GPR_TIMESPAN));
}

static void gpr_to_hs_log(gpr_log_func_args *a) {
    hs_log_level l = a->severity == GPR_LOG_SEVERITY_ERROR  ? HS_LOG_ERROR
                     : a->severity == GPR_LOG_SEVERITY_INFO ? HS_LOG_INFO
                                                            : HS_LOG_DEBUG;
    const char *file = a->file ? strrchr(a->file, '/') : NULL;
    hs_log(l, "grpc", "%s:%d %s", file ? file + 1 : (a->file ? a->file : "?"), a->line,
           a->message ? a->message : "");
}

static pthread_once_t log_once = PTHREAD_ONCE_INIT;
static void install_log(void) {
    gpr_set_log_function(gpr_to_hs_log);
}

void hs_grpc_log_to_hs(void) {
    pthread_once(&log_once, install_log);
}
