/* hotstuff/block_tree.h - read access to the persistent block tree (spec §6), and the App's
 * speculative view of it (spec §6.6).
 *
 * Every hs_bt_* getter reads through an hs_kv_reader: pass a snapshot (hs_kv_store.snapshot,
 * or hs_replica_snapshot) for a consistent view from any thread. Getters return HS_OK,
 * HS_NOT_FOUND when the key is absent, HS_ERR_CORRUPT when stored bytes fail to decode, or the
 * reader's own error. Out-parameters are owned by the caller on HS_OK only.
 */
#ifndef HOTSTUFF_BLOCK_TREE_H
#define HOTSTUFF_BLOCK_TREE_H

#include "hotstuff/kv.h"
#include "hotstuff/types.h"

/* VALIDATOR_SET_UPDATES_STATUS of a block (spec §6.2); absent means NONE. */
typedef enum hs_vsu_status {
    HS_VSU_NONE = 0,
    HS_VSU_PENDING = 1,
    HS_VSU_COMMITTED = 2
} hs_vsu_status;

hs_status hs_bt_block(const hs_kv_reader *r, const hs_hash *h, hs_block *out);
hs_status hs_bt_contains(const hs_kv_reader *r, const hs_hash *h, bool *out);
hs_status hs_bt_block_height(const hs_kv_reader *r, const hs_hash *h, uint64_t *out);
hs_status hs_bt_block_justify(const hs_kv_reader *r, const hs_hash *h, hs_pc *out);
hs_status hs_bt_block_data_hash(const hs_kv_reader *r, const hs_hash *h, hs_hash *out);
hs_status hs_bt_block_data_len(const hs_kv_reader *r, const hs_hash *h, uint32_t *out);
hs_status hs_bt_block_data(const hs_kv_reader *r, const hs_hash *h, hs_data *out);
hs_status hs_bt_block_datum(const hs_kv_reader *r, const hs_hash *h, uint32_t i, hs_bytes *out);
/* Committed block at a height. */
hs_status hs_bt_block_at_height(const hs_kv_reader *r, uint64_t height, hs_hash *out);
/* Children list of a block ([0;32] for the genesis blocks); *out malloc'd, n entries. An absent
 * list is HS_OK with n = 0. */
hs_status hs_bt_children(const hs_kv_reader *r, const hs_hash *h, hs_hash **out, uint32_t *n);
hs_status hs_bt_committed_app_state(const hs_kv_reader *r, const uint8_t *key, size_t klen,
                                    hs_bytes *out);
hs_status hs_bt_pending_app_updates(const hs_kv_reader *r, const hs_hash *h, hs_app_updates *out);
/* *status is NONE when absent (HS_OK); *pending is filled only for PENDING. */
hs_status hs_bt_vsu_status(const hs_kv_reader *r, const hs_hash *h, hs_vsu_status *status,
                           hs_vs_updates *pending);
/* The Commit PC that committed the VS-updating block h (this port's addition; NOT_FOUND for other
 * blocks, or if the block was committed through another certificate). */
hs_status hs_bt_vs_update_commit_pc(const hs_kv_reader *r, const hs_hash *h, hs_pc *out);
hs_status hs_bt_committed_vs(const hs_kv_reader *r, hs_validator_set *out);
hs_status hs_bt_previous_vs(const hs_kv_reader *r, hs_validator_set *out);
hs_status hs_bt_vs_update_height(const hs_kv_reader *r, uint64_t *out); /* NOT_FOUND = None */
hs_status hs_bt_vs_update_decided(const hs_kv_reader *r, bool *out);
hs_status hs_bt_vss(const hs_kv_reader *r, hs_vss *out);
hs_status hs_bt_locked_pc(const hs_kv_reader *r, hs_pc *out);
hs_status hs_bt_highest_pc(const hs_kv_reader *r, hs_pc *out);
hs_status hs_bt_highest_tc(const hs_kv_reader *r, hs_tc *out);
hs_status hs_bt_highest_view_entered(const hs_kv_reader *r, uint64_t *out);
hs_status hs_bt_highest_view_phase_voted(const hs_kv_reader *r, uint64_t *out);
hs_status hs_bt_highest_committed_block(const hs_kv_reader *r, hs_hash *out);
hs_status hs_bt_newest_block(const hs_kv_reader *r, hs_hash *out);
/* Highest committed height; NOT_FOUND when nothing is committed yet. */
hs_status hs_bt_highest_committed_height(const hs_kv_reader *r, uint64_t *out);
/* Blocks served by Block Sync (spec §5.1): committed blocks from `start`, then the speculative
 * chain ending at NEWEST_BLOCK, at most `limit` in all, with full data. *out malloc'd array of
 * *n blocks; free each with hs_block_free, then free(*out). */
hs_status hs_bt_blocks_from_height_to_newest(const hs_kv_reader *r, uint64_t start,
                                             uint32_t limit, hs_block **out, uint32_t *n);

/* ---- the App's view (spec §6.6) ----
 * Valid only during the App call it is passed to. It sees committed state plus the pending
 * updates of `parent` and its uncommitted ancestors, as if they were committed. */
typedef struct hs_app_view hs_app_view;

/* HS_OK with the value, or HS_NOT_FOUND (deleted by a pending update, or never set). */
hs_status hs_app_view_state(const hs_app_view *v, const uint8_t *key, size_t klen, hs_bytes *out);
/* The tree reader the view reads through: any hs_bt_* getter may be used on it. */
const hs_kv_reader *hs_app_view_reader(const hs_app_view *v);
/* The committed validator set (not a speculative one, spec §6.6). */
hs_status hs_app_view_validator_set(const hs_app_view *v, hs_validator_set *out);

#endif
