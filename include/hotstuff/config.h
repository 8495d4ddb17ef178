/* hotstuff/config.h - replica Configuration (spec §10) and its builder.
 *
 * Every field of spec §10 is required: build fails, naming the field, if one was not set or is
 * out of range. The fields after the spec's are this port's bounds; they have defaults.
 * Durations are in milliseconds.
 */
#ifndef HOTSTUFF_CONFIG_H
#define HOTSTUFF_CONFIG_H

#include "hotstuff/types.h"

/* Liveness choices where this port departs from HotStuff-rs v0.4 (docs/liveness.md). The
 * zero value of each is the reference behaviour; the builder's defaults are the robust ones. */
typedef enum hs_leader_selection {
    HS_LEADER_ROUND_ROBIN = 0, /* spec §4.3: a function of the view alone */
    HS_LEADER_ACTIVE,          /* round robin over the signers of the basis's parent PC,
                                  skipping the leaders of views that failed since the basis */
} hs_leader_selection;

typedef enum hs_vote_routing {
    HS_VOTES_TO_NEXT_LEADER = 0, /* spec §3.1 phase_vote_recipient */
    HS_VOTES_TO_ALL,             /* broadcast: every replica collects every PC */
} hs_vote_routing;

typedef enum hs_view_deadlines {
    HS_DEADLINES_EPOCH = 0, /* spec §4.2: laid out per epoch from the epoch's start */
    HS_DEADLINES_ENTRY,     /* from the moment a view is entered, with a bounded back-off */
} hs_view_deadlines;

typedef struct hs_config {
    /* spec §10 */
    hs_keypair me;
    uint64_t chain_id;
    uint32_t block_sync_request_limit;
    uint64_t block_sync_server_advertise_time_ms;
    uint64_t block_sync_response_timeout_ms;
    uint64_t block_sync_blacklist_expiry_time_ms;
    uint64_t block_sync_trigger_min_view_difference;
    uint64_t block_sync_trigger_timeout_ms;
    uint64_t progress_msg_buffer_capacity; /* bytes, costed as in spec §3.14 */
    uint32_t epoch_length;
    uint64_t max_view_time_ms;
    bool log_events;
    /* liveness choices of this port (defaults: ACTIVE, TO_ALL, ENTRY) */
    hs_leader_selection leader_selection;
    hs_vote_routing vote_routing;
    hs_view_deadlines view_deadlines;
    /* bounds of this port */
    uint32_t event_queue_capacity; /* events waiting for the event bus thread (default 65536) */
    uint32_t inbox_capacity;       /* messages waiting for the algorithm thread (default 8192) */
    uint32_t sync_request_queue_capacity; /* requests waiting for the sync server (default 256) */
    hs_limits limits;              /* decoding bounds (default hs_limits_default()) */
} hs_config;

typedef struct hs_config_builder hs_config_builder;

hs_config_builder *hs_config_builder_new(void); /* NULL on allocation failure */
void hs_config_builder_free(hs_config_builder *b);

void hs_config_builder_me(hs_config_builder *b, const hs_keypair *me);
void hs_config_builder_chain_id(hs_config_builder *b, uint64_t chain_id);
void hs_config_builder_block_sync_request_limit(hs_config_builder *b, uint32_t limit);
void hs_config_builder_block_sync_server_advertise_time(hs_config_builder *b, uint64_t ms);
void hs_config_builder_block_sync_response_timeout(hs_config_builder *b, uint64_t ms);
void hs_config_builder_block_sync_blacklist_expiry_time(hs_config_builder *b, uint64_t ms);
void hs_config_builder_block_sync_trigger_min_view_difference(hs_config_builder *b, uint64_t d);
void hs_config_builder_block_sync_trigger_timeout(hs_config_builder *b, uint64_t ms);
void hs_config_builder_progress_msg_buffer_capacity(hs_config_builder *b, uint64_t bytes);
void hs_config_builder_epoch_length(hs_config_builder *b, uint32_t views);
void hs_config_builder_max_view_time(hs_config_builder *b, uint64_t ms);
void hs_config_builder_log_events(hs_config_builder *b, bool on);
void hs_config_builder_event_queue_capacity(hs_config_builder *b, uint32_t n);
void hs_config_builder_inbox_capacity(hs_config_builder *b, uint32_t n);
void hs_config_builder_sync_request_queue_capacity(hs_config_builder *b, uint32_t n);
void hs_config_builder_limits(hs_config_builder *b, const hs_limits *limits);
void hs_config_builder_leader_selection(hs_config_builder *b, hs_leader_selection s);
void hs_config_builder_vote_routing(hs_config_builder *b, hs_vote_routing r);
void hs_config_builder_view_deadlines(hs_config_builder *b, hs_view_deadlines d);
/* All three liveness choices set to HotStuff-rs v0.4's behaviour, or to this port's defaults. */
void hs_config_reference_liveness(hs_config *c);
void hs_config_default_liveness(hs_config *c);

/* HS_OK and *out, or HS_ERR_INVALID with a message naming the field in err. */
hs_status hs_config_builder_build(const hs_config_builder *b, hs_config *out, char *err,
                                  size_t errlen);

/* The same validation for a config filled in directly. */
hs_status hs_config_validate(const hs_config *c, char *err, size_t errlen);

/* The spec's test values (§10) with `me`, and the reference's liveness behaviour, so that the
 * spec's conformance tests run as written; for tests and examples. */
hs_config hs_config_test_values(const hs_keypair *me);

#endif
