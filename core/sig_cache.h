/* core/sig_cache.h - a bounded memory of Ed25519 signatures already verified, so a certificate
 * is checked once however many messages carry it. Internal to libhotstuff.
 *
 * Why: every vote of a view is verified when it arrives, and the PC those votes form then comes
 * back in the collector's own check, in the next Proposal's justify, in AdvanceView, NewView and
 * Nudge messages: each a full re-verification of a quorum of signatures. Profiled at 1-tx
 * blocks, that re-verification was a third of a replica's CPU (bench/README.md).
 *
 * Safety: only successful verifications are remembered, keyed by a 256-bit BLAKE2b digest of
 * (key, message, signature); verification is a pure function of those bytes, so a hit gives the
 * answer a fresh verification would. A miss (evicted, or never seen) verifies again. The cache
 * never changes an outcome, only its cost, so the core stays deterministic.
 *
 * Bounds: HS_SIG_CACHE_SLOTS entries of 32 bytes, direct-mapped; a newer entry replaces the one
 * in its slot. Owned by the core; one thread (the algorithm thread) uses it.
 */
#ifndef HS_CORE_SIG_CACHE_H
#define HS_CORE_SIG_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hotstuff/types.h"

#define HS_SIG_CACHE_SLOTS 4096

typedef struct hs_sig_cache hs_sig_cache;

/* NULL when out of memory (hs_core_new then fails with HS_ERR_NOMEM; the functions below
 * also accept NULL and verify without a cache). */
hs_sig_cache *hs_sig_cache_new(void);
void hs_sig_cache_free(hs_sig_cache *c);

/* hs_verify(key, msg, len, sig), answered from the cache when this exact triple verified
 * before. c may be NULL (no cache). */
bool hs_sig_cache_verify(hs_sig_cache *c, const hs_key *key, const uint8_t *msg, size_t len,
                         const hs_sig *sig);

/* Records a signature this replica made itself (hs_sign with a key pair checked at start),
 * so that its own vote, looped back, is not verified again. c may be NULL. */
void hs_sig_cache_remember(hs_sig_cache *c, const hs_key *key, const uint8_t *msg, size_t len,
                           const hs_sig *sig);

/* Counters, for tests and the benchmark notes. */
typedef struct hs_sig_cache_stats {
    uint64_t hits, misses, rejected;
} hs_sig_cache_stats;
hs_sig_cache_stats hs_sig_cache_get_stats(const hs_sig_cache *c);

#endif
