/* core/bt.h - the block tree's writers (spec §6.3-6.5, §3.5) and the App view's lifetime.
 * Internal to libhotstuff. Only the algorithm thread calls the writers; each is ONE atomic
 * KV batch. Readers are the public hs_bt_* getters (hotstuff/block_tree.h).
 */
#ifndef HS_CORE_BT_H
#define HS_CORE_BT_H

#include "hotstuff/block_tree.h"
#include "hotstuff/kv.h"

/* KV key prefixes (spec §6.1). */
enum {
    HS_KEY_BLOCKS = 0x00,
    HS_KEY_BLOCK_AT_HEIGHT = 0x01,
    HS_KEY_BLOCK_TO_CHILDREN = 0x02,
    HS_KEY_COMMITTED_APP_STATE = 0x03,
    HS_KEY_PENDING_APP_STATE_UPDATES = 0x04,
    HS_KEY_COMMITTED_VALIDATOR_SET = 0x05,
    HS_KEY_VALIDATOR_SET_UPDATES_STATUS = 0x06,
    HS_KEY_LOCKED_PC = 0x07,
    HS_KEY_HIGHEST_VIEW_ENTERED = 0x08,
    HS_KEY_HIGHEST_PC = 0x09,
    HS_KEY_HIGHEST_COMMITTED_BLOCK = 0x0A,
    HS_KEY_NEWEST_BLOCK = 0x0B,
    HS_KEY_HIGHEST_TC = 0x0C,
    HS_KEY_PREVIOUS_VALIDATOR_SET = 0x0D,
    HS_KEY_VALIDATOR_SET_UPDATE_BLOCK_HEIGHT = 0x0E,
    HS_KEY_VALIDATOR_SET_UPDATE_DECIDED = 0x0F,
    HS_KEY_HIGHEST_VIEW_PHASE_VOTED = 0x10,
    /* The port's own key (not in spec §6.1): the Commit PC that committed a VS-updating block,
     * served by Block Sync so that a peer can commit that block (see sync_server.c). */
    HS_KEY_VS_UPDATE_COMMIT_PC = 0x11
};
enum {
    HS_BLOCK_FIELD_HEIGHT = 0x00,
    HS_BLOCK_FIELD_JUSTIFY = 0x01,
    HS_BLOCK_FIELD_DATA_HASH = 0x02,
    HS_BLOCK_FIELD_DATA_LEN = 0x03,
    HS_BLOCK_FIELD_DATA = 0x04
};

/* A block committed by an update, for the events of spec §3.5. */
typedef struct hs_bt_committed {
    hs_hash block;
    bool has_vsu;
    hs_vs_updates vsu; /* owned */
} hs_bt_committed;

/* What update(justify) did (spec §3.5), for event emission by the caller. */
typedef struct hs_bt_update_result {
    bool highest_pc_updated;  /* HIGHEST_PC := justify */
    bool locked_pc_updated;
    hs_pc locked_pc;          /* owned; the new lock when locked_pc_updated */
    uint32_t n_committed;
    hs_bt_committed *committed; /* owned; oldest first */
    bool has_vsu;               /* the VS updates of the newest committed block that had any */
    hs_vs_updates vsu;          /* owned */
} hs_bt_update_result;

void hs_bt_update_result_free(hs_bt_update_result *r);

/* spec §6.5; HS_ERR_STATE if already initialised. */
hs_status hs_bt_initialize(const hs_kv_store *kv, const hs_app_updates *initial_app_state,
                           const hs_vss *vss);
/* spec §6.3. asu / vsu may be NULL (None). */
hs_status hs_bt_insert(const hs_kv_store *kv, const hs_block *b, const hs_app_updates *asu,
                       const hs_vs_updates *vsu);
/* spec §3.5 (including pc_to_lock, block_to_commit and commit/prune of spec §6.4), evaluated on
 * the tree before the update, written as one batch. Precondition: justify passed the safety
 * gate. res must be zeroed; it is filled on HS_OK. */
hs_status hs_bt_update(const hs_kv_store *kv, const hs_pc *justify, hs_bt_update_result *res);
hs_status hs_bt_set_highest_view_entered(const hs_kv_store *kv, uint64_t view);
hs_status hs_bt_set_highest_view_phase_voted(const hs_kv_store *kv, uint64_t view);
hs_status hs_bt_set_highest_tc(const hs_kv_store *kv, const hs_tc *tc);

/* Builds the App's view at `parent` (NULL: the empty walk, for height-0 blocks). The view reads
 * through r, which must outlive it. */
hs_status hs_app_view_open(const hs_kv_reader *r, const hs_hash *parent, hs_app_view **out);
void hs_app_view_close(hs_app_view *v);

#endif
