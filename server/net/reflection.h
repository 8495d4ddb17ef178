/* server/net/reflection.h - gRPC server reflection (grpc.reflection.v1 and v1alpha, which are
 * wire-identical) answered from a serialized FileDescriptorSet, independent of any server
 * loop, so the admin service and the replica transport can both serve it.
 *
 * The build embeds every served proto with its imports (hs_descriptor_set). Each request of
 * the bidi ServerReflectionInfo stream gets exactly one response: list_services,
 * file_by_filename and file_containing_symbol are answered (the requested file first, then
 * its transitive dependencies not yet sent on this stream); anything unknown gets an
 * error_response NOT_FOUND and the stream stays open, as clients expect.
 *
 * Threads: an hs_reflection is immutable after hs_reflection_new, so any number of loops may
 * share one. An hs_reflection_stream belongs to one call.
 */
#ifndef HS_SERVER_GRPC_REFLECTION_H
#define HS_SERVER_GRPC_REFLECTION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <grpc/grpc.h>

#define HS_REFLECTION_V1_METHOD "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"
#define HS_REFLECTION_V1ALPHA_METHOD \
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"
#define HS_REFLECTION_V1_SERVICE "grpc.reflection.v1.ServerReflection"
#define HS_REFLECTION_V1ALPHA_SERVICE "grpc.reflection.v1alpha.ServerReflection"

/* The descriptor set generated at build time (server/CMakeLists.txt). */
extern const unsigned char hs_descriptor_set[];
extern const size_t hs_descriptor_set_len;

typedef struct hs_reflection hs_reflection;

/* Indexes a FileDescriptorSet (borrowed: it must outlive the index; the embedded one does).
 * `services` are the fully qualified names list_services reports, copied. NULL when the set
 * does not parse or memory runs out. */
hs_reflection *hs_reflection_new(const uint8_t *fds, size_t len, const char *const *services,
                                 size_t n_services);
void hs_reflection_free(hs_reflection *r);

/* Which files a stream has already been sent. */
typedef struct hs_reflection_stream hs_reflection_stream;
hs_reflection_stream *hs_reflection_stream_new(const hs_reflection *r);
void hs_reflection_stream_free(hs_reflection_stream *s);

/* The response to one serialized ServerReflectionRequest, or NULL when the request does not
 * parse (end the call with INVALID_ARGUMENT) or memory runs out. The caller destroys it. */
grpc_byte_buffer *hs_reflection_answer(const hs_reflection *r, hs_reflection_stream *s,
                                       grpc_byte_buffer *req);

/* For tests and tools: the file index holding a fully qualified symbol, or -1. */
int hs_reflection_find_symbol(const hs_reflection *r, const char *symbol);

#endif
