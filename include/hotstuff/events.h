/* hotstuff/events.h - the 27 event types (spec §9).
 *
 * An hs_event owns its members; handlers receive it by const pointer, valid only for the
 * duration of the call (copy with hs_event_copy to keep it). Every event carries the wall-clock
 * time of its creation in milliseconds since the Unix epoch.
 */
#ifndef HOTSTUFF_EVENTS_H
#define HOTSTUFF_EVENTS_H

#include "hotstuff/messages.h"

typedef enum hs_event_type {
    HS_EV_INSERT_BLOCK = 0,
    HS_EV_COMMIT_BLOCK,
    HS_EV_PRUNE_BLOCK,
    HS_EV_UPDATE_HIGHEST_PC,
    HS_EV_UPDATE_LOCKED_PC,
    HS_EV_UPDATE_HIGHEST_TC,
    HS_EV_UPDATE_VALIDATOR_SET,
    HS_EV_PROPOSE,
    HS_EV_NUDGE,
    HS_EV_PHASE_VOTE,
    HS_EV_NEW_VIEW,
    HS_EV_TIMEOUT_VOTE,
    HS_EV_ADVANCE_VIEW,
    HS_EV_RECEIVE_PROPOSAL,
    HS_EV_RECEIVE_NUDGE,
    HS_EV_RECEIVE_PHASE_VOTE,
    HS_EV_RECEIVE_NEW_VIEW,
    HS_EV_RECEIVE_TIMEOUT_VOTE,
    HS_EV_RECEIVE_ADVANCE_VIEW,
    HS_EV_START_VIEW,
    HS_EV_VIEW_TIMEOUT,
    HS_EV_COLLECT_PC,
    HS_EV_COLLECT_TC,
    HS_EV_START_SYNC,
    HS_EV_END_SYNC,
    HS_EV_RECEIVE_SYNC_REQUEST,
    HS_EV_SEND_SYNC_RESPONSE
} hs_event_type;
#define HS_EV_COUNT 27

typedef struct hs_event {
    hs_event_type type;
    uint64_t timestamp_ms; /* wall clock, ms since the Unix epoch */
    union {
        struct { hs_block block; } insert_block;
        struct { hs_hash block; } commit_block;
        struct { hs_hash block; } prune_block;
        struct { hs_pc highest_pc; } update_highest_pc;
        struct { hs_pc locked_pc; } update_locked_pc;
        struct { hs_tc highest_tc; } update_highest_tc;
        struct { hs_hash cause_block; hs_vs_updates updates; } update_validator_set;
        struct { hs_proposal proposal; } propose;
        struct { hs_nudge nudge; } nudge;
        struct { hs_phase_vote vote; } phase_vote;
        struct { hs_new_view new_view; } new_view;
        struct { hs_timeout_vote timeout_vote; } timeout_vote;
        struct { hs_advance_view advance_view; } advance_view;
        struct { hs_key origin; hs_proposal proposal; } receive_proposal;
        struct { hs_key origin; hs_nudge nudge; } receive_nudge;
        struct { hs_key origin; hs_phase_vote vote; } receive_phase_vote;
        struct { hs_key origin; hs_new_view new_view; } receive_new_view;
        struct { hs_key origin; hs_timeout_vote timeout_vote; } receive_timeout_vote;
        struct { hs_key origin; hs_advance_view advance_view; } receive_advance_view;
        struct { uint64_t view; } start_view;
        struct { uint64_t view; } view_timeout;
        struct { hs_pc pc; } collect_pc;
        struct { hs_tc tc; } collect_tc;
        struct { hs_key peer; } start_sync;
        struct { hs_key peer; uint64_t blocks_synced; } end_sync;
        struct { hs_key peer; uint64_t start_height; uint32_t limit; } receive_sync_request;
        struct { hs_key peer; uint32_t n_blocks; hs_block *blocks; hs_pc highest_pc; } send_sync_response;
    } u;
} hs_event;

/* "InsertBlock", "CommitBlock", ... (the PascalCase names of spec §9); NULL if out of range. */
const char *hs_event_type_name(hs_event_type t);
/* Parses a PascalCase name; false if unknown. */
bool hs_event_type_parse(const char *name, hs_event_type *out);

void hs_event_free(hs_event *e);
hs_status hs_event_copy(hs_event *dst, const hs_event *src);

/* Formats the spec §9 log line ("InsertBlock, 1701329264, Id5u7f6, 0") into buf, always
 * NUL-terminated; returns the length it needed (like snprintf). */
size_t hs_event_format(const hs_event *e, char *buf, size_t cap);

typedef void (*hs_event_handler)(void *ctx, const hs_event *e);

#endif
