/* core/collectors.h - phase-vote and timeout-vote collectors (spec §2.11). Internal.
 *
 * A collector is bound to (chain_id, view, validator set). The caller has already verified each
 * vote's signature against the signer.
 *
 * Bound: a signer may open a new (block, phase) entry only while it has no signature in any
 * entry of the collector. Honest replicas vote once per view, so this never refuses an honest
 * vote, while a Byzantine signer voting for many blocks opens at most one entry: entries stay
 * at most the size of the validator set. (A global cap on entries would let one Byzantine
 * signer fill it with junk before the honest votes arrive.)
 */
#ifndef HS_CORE_COLLECTORS_H
#define HS_CORE_COLLECTORS_H

#include "hotstuff/messages.h"

typedef struct hs_vote_entry {
    hs_hash block;
    hs_phase phase;
    hs_sigset sigs; /* owned, sized to the collector's set */
    hs_u128 power;
} hs_vote_entry;

typedef struct hs_phase_collector {
    uint64_t chain_id, view;
    hs_validator_set vs; /* owned copy */
    uint32_t n_entries, cap_entries;
    hs_vote_entry *entries; /* owned; at most vs.n entries (see above) */
} hs_phase_collector;

typedef struct hs_timeout_collector {
    uint64_t chain_id, view;
    hs_validator_set vs; /* owned copy */
    hs_sigset sigs;      /* owned */
    hs_u128 power;
} hs_timeout_collector;

/* ActiveCollectorPair: a CVS collector plus a PVS collector iff !vss.update_decided. */
typedef struct hs_phase_collectors {
    hs_phase_collector cvs;
    bool has_pvs;
    hs_phase_collector pvs;
} hs_phase_collectors;

typedef struct hs_timeout_collectors {
    hs_timeout_collector cvs;
    bool has_pvs;
    hs_timeout_collector pvs;
} hs_timeout_collectors;

/* init: *c must be zeroed or freed. */
hs_status hs_phase_collectors_init(hs_phase_collectors *c, uint64_t chain_id, uint64_t view,
                                   const hs_vss *vss);
void hs_phase_collectors_free(hs_phase_collectors *c);
/* The update_validator_sets rule of spec §2.11 (C-port variant, §14.8). */
hs_status hs_phase_collectors_update(hs_phase_collectors *c, const hs_vss *vss);
/* *got tells whether *out (owned by the caller) holds a new PC. */
hs_status hs_phase_collectors_collect(hs_phase_collectors *c, const hs_key *signer,
                                      const hs_phase_vote *v, bool *got, hs_pc *out);

hs_status hs_timeout_collectors_init(hs_timeout_collectors *c, uint64_t chain_id, uint64_t view,
                                     const hs_vss *vss);
void hs_timeout_collectors_free(hs_timeout_collectors *c);
hs_status hs_timeout_collectors_update(hs_timeout_collectors *c, const hs_vss *vss);
hs_status hs_timeout_collectors_collect(hs_timeout_collectors *c, const hs_key *signer,
                                        const hs_timeout_vote *v, bool *got, hs_tc *out);

#endif
