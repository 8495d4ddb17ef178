/* hotstuff/network.h - the Network interface (spec §8.1).
 *
 * Called from several library threads at once; implementations must be thread-safe.
 * broadcast and send must not block on a slow or dead peer: queue or drop. Messages are passed
 * by const pointer and remain the caller's; copy or encode what you keep.
 */
#ifndef HOTSTUFF_NETWORK_H
#define HOTSTUFF_NETWORK_H

#include "hotstuff/messages.h"

typedef struct hs_network {
    void *self;
    /* Once, at start, with the committed validator set. */
    void (*init_validator_set)(void *self, const hs_validator_set *vs);
    /* After a commit changed the committed validator set. */
    void (*update_validator_set)(void *self, const hs_vs_updates *updates);
    /* To every peer, listeners included, AND to the local replica itself. */
    void (*broadcast)(void *self, const hs_msg *m);
    /* To one peer, which may be the local replica itself. */
    void (*send)(void *self, const hs_key *to, const hs_msg *m);
    /* Waits up to timeout_ms for one inbound message: HS_OK with *origin (authenticated by the
     * network) and *out (now owned by the caller), HS_TIMEOUT, or HS_ERR_CLOSED. */
    hs_status (*recv)(void *self, int timeout_ms, hs_key *origin, hs_msg *out);
} hs_network;

#endif
