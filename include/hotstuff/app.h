/* hotstuff/app.h - the App interface (spec §7).
 *
 * The three calls run synchronously on the algorithm thread and must be deterministic: pure
 * functions of the request, reading the tree only through the hs_app_view they are given.
 * The response structs are zeroed by the library before the call; the App fills them with
 * memory it allocates, and the library takes ownership and frees them (hs_data_free,
 * hs_app_updates_free, hs_vs_updates_free) after the call.
 */
#ifndef HOTSTUFF_APP_H
#define HOTSTUFF_APP_H

#include "hotstuff/block_tree.h"
#include "hotstuff/types.h"

typedef struct hs_produce_block_request {
    uint64_t cur_view;
    bool has_parent; /* false: producing a height-0 block */
    hs_hash parent;
    const hs_app_view *tree; /* at parent */
} hs_produce_block_request;

typedef struct hs_produce_block_response {
    hs_hash data_hash;
    hs_data data;
    /* Ignored by the library (spec §3.6): the proposer validates its own proposal like every
     * other replica. Filled for symmetry with validate. */
    bool has_app_state_updates;
    hs_app_updates app_state_updates;
    bool has_validator_set_updates;
    hs_vs_updates validator_set_updates;
} hs_produce_block_response;

typedef struct hs_validate_block_request {
    const hs_block *proposed_block;
    const hs_app_view *tree; /* at proposed_block.justify.block (empty if genesis) */
} hs_validate_block_request;

typedef struct hs_validate_block_response {
    bool valid;
    bool has_app_state_updates;
    hs_app_updates app_state_updates;
    bool has_validator_set_updates; /* Some(empty) still makes a VS-updating block */
    hs_vs_updates validator_set_updates;
} hs_validate_block_response;

typedef struct hs_app {
    void *self;
    /* A non-OK status means the App could not answer (not "Invalid"): the library logs it and
     * does not propose or vote in this view. */
    hs_status (*produce_block)(void *self, const hs_produce_block_request *req,
                               hs_produce_block_response *resp);
    hs_status (*validate_block)(void *self, const hs_validate_block_request *req,
                                hs_validate_block_response *resp);
    hs_status (*validate_block_for_sync)(void *self, const hs_validate_block_request *req,
                                         hs_validate_block_response *resp);
} hs_app;

#endif
