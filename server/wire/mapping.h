/* server/wire/mapping.h - the one module that converts between libhotstuff's types (hotstuff/
 * types.h, messages.h) and their protobuf-c forms (the .proto files of proto/hotstuff/v1).
 * The replica transport and the admin service both use it; nothing else in server/ builds or
 * reads these protobuf structs field by field.
 *
 * Core -> protobuf ("to_pb") builds a tree of protobuf-c structs in an arena. Bytes fields point
 * straight into the source value (no copy), so the tree is valid while both the arena and the
 * source live; pack it (protobuf_c_message_pack) and then free the arena. The source must be a
 * well-formed value such as the library produces (phases in range, counts matching arrays).
 * These functions return NULL only when memory runs out.
 *
 * Protobuf -> core ("from_pb") treats its input as hostile (it came off the network or from an
 * admin client). It checks every length (hash 32, key 32, signature 64 bytes), every enum
 * (Phase UNSPECIFIED or out of range is rejected), every oneof and required sub-message, every
 * count and size against `lim` (NULL = hs_limits_default()), and the canonical order of sets.
 * It returns HS_OK with *out owned by the caller, HS_ERR_INVALID with a one-line reason naming
 * the field ("Block.justify: PhaseCertificate.block: want 32 bytes, got 3"), or HS_ERR_NOMEM.
 * On failure *out is empty (zeroed), ready to reuse without freeing.
 */
#ifndef HS_SERVER_MAPPING_H
#define HS_SERVER_MAPPING_H

#include <stddef.h>
#include <stdint.h>

#include "hotstuff/messages.h"
#include "hotstuff/types.h"
#include "hotstuff/v1/replica.pb-c.h"
#include "hotstuff/v1/types.pb-c.h"

/* Room for a reason string, NUL included. Longer reasons are truncated. */
#define HS_MAP_REASON_MAX 192

/* ---- arena for the to_pb direction ---- */

typedef struct hs_pb_chunk hs_pb_chunk;

/* A bump allocator: many small allocations, one free. Zero it (or hs_pb_arena_init) to start. */
typedef struct hs_pb_arena {
    hs_pb_chunk *head; /* newest chunk first */
} hs_pb_arena;

void hs_pb_arena_init(hs_pb_arena *a);
/* Frees every allocation made from the arena; the arena is then empty and reusable. */
void hs_pb_arena_free(hs_pb_arena *a);
/* n zeroed bytes aligned for any type, or NULL when memory runs out. */
void *hs_pb_arena_alloc(hs_pb_arena *a, size_t n);

/* ---- enums ---- */

Hotstuff__V1__Phase hs_map_phase_to_pb(hs_phase p);
/* HS_ERR_INVALID for UNSPECIFIED and for values outside the enum. */
hs_status hs_map_phase_from_pb(int v, hs_phase *out);

/* ---- core -> protobuf (arena-allocated, zero-copy; NULL = out of memory) ---- */

Hotstuff__V1__PhaseCertificate *hs_map_pc_to_pb(hs_pb_arena *a, const hs_pc *pc);
Hotstuff__V1__TimeoutCertificate *hs_map_tc_to_pb(hs_pb_arena *a, const hs_tc *tc);
Hotstuff__V1__Block *hs_map_block_to_pb(hs_pb_arena *a, const hs_block *b);
Hotstuff__V1__ValidatorSet *hs_map_vs_to_pb(hs_pb_arena *a, const hs_validator_set *vs);
Hotstuff__V1__ValidatorSetUpdates *hs_map_vs_updates_to_pb(hs_pb_arena *a,
                                                           const hs_vs_updates *u);
Hotstuff__V1__AppStateUpdates *hs_map_app_updates_to_pb(hs_pb_arena *a,
                                                        const hs_app_updates *u);
/* m->type must be one of the ten message types. */
Hotstuff__V1__Message *hs_map_msg_to_pb(hs_pb_arena *a, const hs_msg *m);

/* ---- protobuf -> core (validating) ---- */

hs_status hs_map_pc_from_pb(const Hotstuff__V1__PhaseCertificate *pb, const hs_limits *lim,
                            hs_pc *out, char reason[HS_MAP_REASON_MAX]);
hs_status hs_map_tc_from_pb(const Hotstuff__V1__TimeoutCertificate *pb, const hs_limits *lim,
                            hs_tc *out, char reason[HS_MAP_REASON_MAX]);
hs_status hs_map_block_from_pb(const Hotstuff__V1__Block *pb, const hs_limits *lim,
                               hs_block *out, char reason[HS_MAP_REASON_MAX]);
/* Members must be sorted strictly ascending by key. */
hs_status hs_map_vs_from_pb(const Hotstuff__V1__ValidatorSet *pb, const hs_limits *lim,
                            hs_validator_set *out, char reason[HS_MAP_REASON_MAX]);
/* Both lists strictly ascending, disjoint, together at most lim->max_update_entries. */
hs_status hs_map_vs_updates_from_pb(const Hotstuff__V1__ValidatorSetUpdates *pb,
                                    const hs_limits *lim, hs_vs_updates *out,
                                    char reason[HS_MAP_REASON_MAX]);
hs_status hs_map_app_updates_from_pb(const Hotstuff__V1__AppStateUpdates *pb,
                                     const hs_limits *lim, hs_app_updates *out,
                                     char reason[HS_MAP_REASON_MAX]);
hs_status hs_map_msg_from_pb(const Hotstuff__V1__Message *pb, const hs_limits *lim,
                             hs_msg *out, char reason[HS_MAP_REASON_MAX]);

/* ---- whole messages as bytes (a serialized hotstuff.v1.Message) ---- */

/* *out is malloc'd; the caller frees it. HS_ERR_INVALID for an unknown m->type. */
hs_status hs_map_msg_pack(const hs_msg *m, uint8_t **out, size_t *out_len);
/* Unpacks and validates untrusted bytes. */
hs_status hs_map_msg_unpack(const uint8_t *p, size_t len, const hs_limits *lim, hs_msg *out,
                            char reason[HS_MAP_REASON_MAX]);

#endif
