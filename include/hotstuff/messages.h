/* hotstuff/messages.h - protocol messages (spec §2.8-2.9) and their Borsh wire form.
 *
 * hs_msg owns its members (blocks, certificates); release with hs_msg_free. The library
 * hands messages to the Network by const pointer (the Network copies or encodes what it
 * keeps) and receives them from Network.recv by value (ownership passes to the library).
 */
#ifndef HOTSTUFF_MESSAGES_H
#define HOTSTUFF_MESSAGES_H

#include "hotstuff/types.h"

typedef enum hs_msg_type {
    HS_MSG_NONE = 0,
    HS_MSG_PROPOSAL,
    HS_MSG_NUDGE,
    HS_MSG_PHASE_VOTE,
    HS_MSG_NEW_VIEW,
    HS_MSG_TIMEOUT_VOTE,
    HS_MSG_ADVANCE_VIEW,
    HS_MSG_ADVERTISE_BLOCK,
    HS_MSG_ADVERTISE_PC,
    HS_MSG_SYNC_REQUEST,
    HS_MSG_SYNC_RESPONSE
} hs_msg_type;
#define HS_MSG_TYPE_COUNT 11

/* "Proposal", "Nudge", ... */
const char *hs_msg_type_name(hs_msg_type t);

typedef struct hs_proposal {
    uint64_t chain_id;
    uint64_t view;
    hs_block block;
} hs_proposal;

typedef struct hs_nudge {
    uint64_t chain_id;
    uint64_t view;
    hs_pc justify;
} hs_nudge;

typedef struct hs_phase_vote {
    uint64_t chain_id;
    uint64_t view;
    hs_hash block;
    hs_phase phase;
    hs_sig sig; /* over borsh((chain_id, view, block, phase)) */
} hs_phase_vote;

typedef struct hs_new_view {
    uint64_t chain_id;
    uint64_t view; /* the view being exited */
    hs_pc highest_pc;
} hs_new_view;

typedef struct hs_timeout_vote {
    uint64_t chain_id;
    uint64_t view;
    hs_sig sig; /* over borsh((chain_id, view)) */
    bool has_highest_tc;
    hs_tc highest_tc;
} hs_timeout_vote;

/* AdvanceView carries a ProgressCertificate: a TC or a PC. */
typedef struct hs_advance_view {
    bool is_tc;
    hs_tc tc; /* when is_tc */
    hs_pc pc; /* otherwise */
} hs_advance_view;

typedef struct hs_advertise_block {
    uint64_t chain_id;
    uint64_t height; /* highest committed block height */
    hs_sig sig;      /* over borsh((chain_id, height)) */
} hs_advertise_block;

typedef struct hs_advertise_pc {
    hs_pc highest_pc;
} hs_advertise_pc;

typedef struct hs_sync_request {
    uint64_t chain_id;
    uint64_t start_height;
    uint32_t limit;
} hs_sync_request;

typedef struct hs_sync_response {
    uint32_t n_blocks;
    hs_block *blocks; /* owned */
    hs_pc highest_pc;
} hs_sync_response;

typedef struct hs_msg {
    hs_msg_type type;
    union {
        hs_proposal proposal;
        hs_nudge nudge;
        hs_phase_vote phase_vote;
        hs_new_view new_view;
        hs_timeout_vote timeout_vote;
        hs_advance_view advance_view;
        hs_advertise_block advertise_block;
        hs_advertise_pc advertise_pc;
        hs_sync_request sync_request;
        hs_sync_response sync_response;
    } u;
} hs_msg;

void hs_msg_free(hs_msg *m);
hs_status hs_msg_copy(hs_msg *dst, const hs_msg *src);

/* The chain id a message is filtered on at intake (spec §2.9): for AdvanceView the
 * certificate's, for AdvertisePC the PC's. */
uint64_t hs_msg_chain_id(const hs_msg *m);
/* The view of a progress message; false for messages without one (advertisements, sync). */
bool hs_msg_view(const hs_msg *m, uint64_t *view);
bool hs_msg_is_hotstuff(const hs_msg *m);  /* Proposal, Nudge, PhaseVote, NewView */
bool hs_msg_is_pacemaker(const hs_msg *m); /* TimeoutVote, AdvanceView */
bool hs_msg_is_advertise(const hs_msg *m); /* AdvertiseBlock, AdvertisePC */

/* Borsh encoding with the variant tags of spec §2.8. *out is malloc'd; caller frees. */
hs_status hs_msg_encode(const hs_msg *m, uint8_t **out, size_t *out_len);
/* Decodes untrusted bytes. Rejects (HS_ERR_INVALID) trailing bytes, unknown tags, bad bools or
 * phases, and anything past `limits`. On success *out is owned by the caller. */
hs_status hs_msg_decode(const uint8_t *buf, size_t len, const hs_limits *limits, hs_msg *out);

/* Bytes signed by a phase voter: borsh((chain_id, view, block, phase)), 49 bytes (spec §2.4). */
#define HS_VOTE_MSG_LEN 49
void hs_phase_vote_bytes(uint64_t chain_id, uint64_t view, const hs_hash *block, hs_phase phase,
                         uint8_t out[HS_VOTE_MSG_LEN]);
/* Bytes signed by a timeout voter and an AdvertiseBlock: borsh((chain_id, x)), 16 bytes. */
#define HS_TIMEOUT_MSG_LEN 16
void hs_timeout_vote_bytes(uint64_t chain_id, uint64_t view, uint8_t out[HS_TIMEOUT_MSG_LEN]);

#endif
