/* hotstuff/replica.h - building, initialising, starting and stopping a threaded replica
 * (spec §11).
 *
 * A started replica runs four threads: the poller (Network.recv into bounded queues), the
 * algorithm thread (the only writer of protocol state; drives hs_core), the Block Sync server,
 * and, when any handler or log_events is set, the event bus. Events reach the bus through a
 * bounded queue (event_queue_capacity): when it is full the arriving event is dropped and
 * counted (hs_replica_get_stats), so a slow handler never stalls consensus. CommitBlock,
 * PruneBlock and UpdateValidatorSet, which applications build state from, may exceed the bound
 * 16-fold before they are dropped (with an error logged).
 */
#ifndef HOTSTUFF_REPLICA_H
#define HOTSTUFF_REPLICA_H

#include "hotstuff/app.h"
#include "hotstuff/config.h"
#include "hotstuff/events.h"
#include "hotstuff/kv.h"
#include "hotstuff/network.h"

/* Writes the initial state of spec §6.5 to an empty store, as one batch. HS_ERR_STATE if the
 * store was already initialised. */
hs_status hs_replica_initialize(const hs_kv_store *kv, const hs_app_updates *initial_app_state,
                                const hs_vss *initial_vss);
/* Whether hs_replica_initialize has run on this store. */
hs_status hs_replica_is_initialized(const hs_kv_store *kv, bool *out);

typedef struct hs_replica_spec_builder hs_replica_spec_builder;
typedef struct hs_replica_spec hs_replica_spec;
typedef struct hs_replica hs_replica;

hs_replica_spec_builder *hs_replica_spec_builder_new(void);
void hs_replica_spec_builder_free(hs_replica_spec_builder *b);
/* Required. The interfaces are copied by value; what they point to is borrowed and must
 * outlive the replica. */
void hs_spec_app(hs_replica_spec_builder *b, const hs_app *app);
void hs_spec_network(hs_replica_spec_builder *b, const hs_network *net);
void hs_spec_kv_store(hs_replica_spec_builder *b, const hs_kv_store *kv);
void hs_spec_configuration(hs_replica_spec_builder *b, const hs_config *cfg);
/* Optional: one handler per event type (a later call replaces an earlier one). */
void hs_spec_on(hs_replica_spec_builder *b, hs_event_type type, hs_event_handler fn, void *ctx);

#define HS_SPEC_ON_(name, TYPE)                                                               \
    static inline void hs_spec_on_##name(hs_replica_spec_builder *b, hs_event_handler fn,       \
                                         void *ctx) {                                           \
        hs_spec_on(b, TYPE, fn, ctx);                                                           \
    }
HS_SPEC_ON_(insert_block, HS_EV_INSERT_BLOCK)
HS_SPEC_ON_(commit_block, HS_EV_COMMIT_BLOCK)
HS_SPEC_ON_(prune_block, HS_EV_PRUNE_BLOCK)
HS_SPEC_ON_(update_highest_pc, HS_EV_UPDATE_HIGHEST_PC)
HS_SPEC_ON_(update_locked_pc, HS_EV_UPDATE_LOCKED_PC)
HS_SPEC_ON_(update_highest_tc, HS_EV_UPDATE_HIGHEST_TC)
HS_SPEC_ON_(update_validator_set, HS_EV_UPDATE_VALIDATOR_SET)
HS_SPEC_ON_(propose, HS_EV_PROPOSE)
HS_SPEC_ON_(nudge, HS_EV_NUDGE)
HS_SPEC_ON_(phase_vote, HS_EV_PHASE_VOTE)
HS_SPEC_ON_(new_view, HS_EV_NEW_VIEW)
HS_SPEC_ON_(timeout_vote, HS_EV_TIMEOUT_VOTE)
HS_SPEC_ON_(advance_view, HS_EV_ADVANCE_VIEW)
HS_SPEC_ON_(receive_proposal, HS_EV_RECEIVE_PROPOSAL)
HS_SPEC_ON_(receive_nudge, HS_EV_RECEIVE_NUDGE)
HS_SPEC_ON_(receive_phase_vote, HS_EV_RECEIVE_PHASE_VOTE)
HS_SPEC_ON_(receive_new_view, HS_EV_RECEIVE_NEW_VIEW)
HS_SPEC_ON_(receive_timeout_vote, HS_EV_RECEIVE_TIMEOUT_VOTE)
HS_SPEC_ON_(receive_advance_view, HS_EV_RECEIVE_ADVANCE_VIEW)
HS_SPEC_ON_(start_view, HS_EV_START_VIEW)
HS_SPEC_ON_(view_timeout, HS_EV_VIEW_TIMEOUT)
HS_SPEC_ON_(collect_pc, HS_EV_COLLECT_PC)
HS_SPEC_ON_(collect_tc, HS_EV_COLLECT_TC)
HS_SPEC_ON_(start_sync, HS_EV_START_SYNC)
HS_SPEC_ON_(end_sync, HS_EV_END_SYNC)
HS_SPEC_ON_(receive_sync_request, HS_EV_RECEIVE_SYNC_REQUEST)
HS_SPEC_ON_(send_sync_response, HS_EV_SEND_SYNC_RESPONSE)
#undef HS_SPEC_ON_

/* HS_OK and an owned spec, or HS_ERR_INVALID naming the missing or bad part in err. The builder
 * is not consumed. */
hs_status hs_spec_build(const hs_replica_spec_builder *b, hs_replica_spec **out, char *err,
                        size_t errlen);
void hs_replica_spec_free(hs_replica_spec *s);

/* Starts the threads (spec §11.3). The spec may be freed afterwards. */
hs_status hs_replica_start(const hs_replica_spec *spec, hs_replica **out);
/* Signals every thread, joins them (event bus, algorithm, sync server, poller) and frees r.
 * Returns within about one poll interval (50 ms) plus the running App or handler call. */
void hs_replica_stop(hs_replica *r);

/* A consistent snapshot of the block tree for the hs_bt_* getters (spec §6.7). */
hs_status hs_replica_snapshot(hs_replica *r, hs_kv_reader *out);
void hs_replica_release_snapshot(hs_replica *r, hs_kv_reader *snap);

typedef struct hs_replica_stats {
    uint64_t view;                  /* the algorithm thread's current view */
    bool syncing;
    uint64_t events_dropped;        /* event queue full */
    uint64_t inbox_dropped;         /* algorithm inbox full */
    uint64_t sync_requests_dropped; /* sync server queue full */
    bool halted;                    /* the algorithm thread stopped on a fatal error */
    hs_status halt_status;
} hs_replica_stats;
void hs_replica_get_stats(hs_replica *r, hs_replica_stats *out);

#endif
