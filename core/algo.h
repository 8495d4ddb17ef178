/* core/algo.h - the state the algorithm thread owns (hs_core), shared by the modules that act
 * on it: algorithm.c (step loop and intake, spec §3.14, §11.3), hotstuff.c (spec §3),
 * pacemaker.c (spec §4) and sync_client.c (spec §5.2-5.4), over the context they all use
 * (core_ctx.c). Internal to libhotstuff; core/README.md draws the layers.
 *
 * Caches: vss and highest_pc mirror the store. They are re-read after every write that can
 * change them, so a reader of the cache always sees what is persisted.
 */
#ifndef HS_CORE_ALGO_H
#define HS_CORE_ALGO_H

#include "collectors.h"
#include "safety.h"
#include "hotstuff/core.h"
#include "msg_buffer.h"

typedef enum hs_proposal_status {
    HS_PS_WAITING = 0,
    HS_PS_ONE_LEADER_PROPOSED,
    HS_PS_ALL_LEADERS_PROPOSED
} hs_proposal_status;

/* Bounds of the sync client's tables: a Byzantine flood of advertisements cannot grow them. */
#define HS_MAX_SYNC_SERVERS 1024
#define HS_MAX_BLACKLIST 1024
/* Bound on the depth-first walk of is_sync_server_address (spec §5.2). */
#define HS_MAX_SYNC_ADDRESS_WALK 4096

typedef struct hs_sync_server_entry {
    hs_key key;
    uint64_t height;
} hs_sync_server_entry;

typedef struct hs_blacklist_entry {
    hs_key key;
    uint64_t expiry;
} hs_blacklist_entry;

struct hs_core {
    hs_config cfg;
    hs_core_env env;
    hs_kv_reader rd; /* the live store: only this thread writes it */
    uint64_t now;    /* monotonic ms of the step in progress */
    hs_status halted;
    /* Called by hs_core_apply_update when highest_pc rose (set by algorithm.c to
     * hs_hotstuff_on_highest_pc), so core_ctx.c does not call into a subprotocol. */
    hs_status (*on_highest_pc)(hs_core *c);

    hs_vss vss;         /* cache of the stored validator set state */
    hs_pc highest_pc;   /* cache of HIGHEST_PC */
    uint64_t highest_view_entered;

    /* HotStuff (spec §3) */
    uint64_t hs_view;
    hs_proposal_status proposal_status;
    bool proposed_in_view; /* this replica sent its Proposal or Nudge for hs_view */
    hs_key first_proposer;
    hs_phase_collectors phase_collectors;
    /* A Proposal or Nudge of the current view whose basis block is being fetched (hotstuff.c):
     * handled again when a sync response has been applied. */
    bool has_parked;
    hs_key parked_origin;
    hs_msg parked;

    /* Pacemaker (spec §4). Within an epoch, deadline(v) = epoch_base + T * (v - epoch_start + 1)
     * (spec §4.2), so the reference's map of deadlines is kept in closed form. */
    uint64_t pm_view;
    uint64_t pm_deadline;
    uint64_t epoch_start_view;
    uint64_t epoch_base;
    uint32_t timeouts_in_row; /* views left by timeout since the last certificate moved us */
    hs_timeout_collectors timeout_collectors;
    bool has_last_advance_view;
    uint64_t last_advance_view;
    bool has_highest_tc;
    hs_tc highest_tc; /* cache of HIGHEST_TC */

    /* Intake (spec §3.14) */
    hs_msg_buffer *buffer;
    hs_sig_cache *sig_cache; /* signatures verified once, whatever carries them again */

    /* Block Sync client (spec §5.2-5.4), non-blocking: see sync_client.c */
    uint32_t n_servers;
    hs_sync_server_entry servers[HS_MAX_SYNC_SERVERS];
    uint32_t n_blacklist;
    hs_blacklist_entry blacklist[HS_MAX_BLACKLIST]; /* FIFO by insertion */
    uint64_t last_progress_or_sync_time;
    uint64_t highest_pc_view_seen;
    bool syncing;
    hs_key sync_peer;
    uint64_t sync_deadline;
    uint64_t sync_synced;
    uint64_t sync_h0;
    uint64_t sync_advertised;
    uint64_t sync_cursor; /* the next request starts at max(committed + 1, sync_cursor) */
    uint64_t rng;
};

/* core_ctx.c: the context every module uses; it calls no subprotocol (see its header) */
void hs_core_emit(hs_core *c, hs_event *e);                         /* stamps, hands to env.emit */
hs_status hs_core_fail(hs_core *c, hs_status st, const char *what); /* halts and logs */
hs_status hs_core_refresh(hs_core *c); /* re-reads vss, highest_pc from the store */
hs_safety_ctx hs_core_safety(const hs_core *c);
/* update(justify) of spec §3.5 with its events, then (if notify) Network.update_validator_set
 * with the returned VS updates, then the refreshed vss handed to the phase collectors. */
hs_status hs_core_apply_update(hs_core *c, const hs_pc *justify, bool notify);
bool hs_core_is_validator(const hs_core *c, const hs_key *k); /* spec §3.1 */
const hs_key *hs_core_me(const hs_core *c);
uint64_t hs_core_epoch(const hs_core *c, uint64_t view);  /* ceil(view / N), spec §1.4 */
bool hs_core_is_epoch_change_view(const hs_core *c, uint64_t view);

/* leader.c (spec §3.1, §4.3): basis = the certificate the view's Proposal or Nudge builds on */
bool hs_leader_is_proposer(const hs_core *c, const hs_key *k, uint64_t view, const hs_pc *basis);
hs_status hs_leader_new_view_recipients(const hs_core *c, uint64_t view, hs_key out[2],
                                        uint32_t *n);
hs_status hs_leader_vote_recipient(const hs_core *c, const hs_phase_vote *v, hs_key *out);

/* hotstuff.c (spec §3) */
hs_status hs_hotstuff_init(hs_core *c, uint64_t initial_view);
void hs_hotstuff_free(hs_core *c);
hs_status hs_hotstuff_enter_view(hs_core *c, uint64_t view);
hs_status hs_hotstuff_on_message(hs_core *c, const hs_key *origin, const hs_msg *m);
hs_status hs_hotstuff_retry_parked(hs_core *c);
hs_status hs_hotstuff_on_highest_pc(hs_core *c); /* after an update raised highest_pc */

/* pacemaker.c (spec §4) */
hs_status hs_pacemaker_init(hs_core *c, uint64_t initial_view);
void hs_pacemaker_free(hs_core *c);
hs_status hs_pacemaker_tick(hs_core *c);
hs_status hs_pacemaker_on_message(hs_core *c, const hs_key *origin, const hs_msg *m);
hs_status hs_pacemaker_on_stale_timeout_vote(hs_core *c, const hs_key *origin,
                                             const hs_timeout_vote *tv);
hs_status hs_pacemaker_on_stale_advance_view(hs_core *c, const hs_key *origin,
                                             const hs_advance_view *av);

/* sync_client.c (spec §5.2-5.4) */
void hs_sync_client_init(hs_core *c);
hs_status hs_sync_client_tick(hs_core *c);
hs_status hs_sync_client_on_advertise(hs_core *c, const hs_key *origin, const hs_msg *m);
hs_status hs_sync_client_on_response(hs_core *c, const hs_key *origin,
                                     const hs_sync_response *resp);
uint64_t hs_sync_client_deadline(const hs_core *c);
/* `origin` sent a certificate for a block we lack, above our highest PC: fetch from it now.
 * *started tells whether a sync began (or one is already running). */
hs_status hs_sync_client_fetch(hs_core *c, const hs_key *origin, const hs_pc *pc, bool preempt,
                               bool *started);

#endif
