/* core/safety.h - certificate checks (spec §2.10) and the safety rules (spec §3.3-3.4).
 * Internal to libhotstuff. All are pure reads of the block tree through `r` plus the local
 * chain id and validator set state. The bool result is meaningful only on HS_OK; a non-OK
 * status is a store failure (read error or corrupt bytes), never a verdict.
 */
#ifndef HS_CORE_SAFETY_H
#define HS_CORE_SAFETY_H

#include "hotstuff/block_tree.h"
#include "hotstuff/messages.h"
#include "sig_cache.h"

typedef struct hs_safety_ctx {
    const hs_kv_reader *r;
    uint64_t chain_id;
    const hs_vss *vss; /* the current validator set state */
    hs_sig_cache *sigs; /* may be NULL: every signature is then verified afresh */
} hs_safety_ctx;

/* spec §2.10 is_correctly_signed; `cache` (may be NULL) remembers the signatures it verified. */
bool hs_is_correctly_signed(hs_sig_cache *cache, const hs_sigset *sigs,
                            const hs_validator_set *vs, const uint8_t *msg, size_t len);
hs_status hs_pc_is_correct(const hs_safety_ctx *c, const hs_pc *pc, bool *out);
hs_status hs_tc_is_correct(const hs_safety_ctx *c, const hs_tc *tc, bool *out);
/* hash recomputes AND pc_is_correct(justify) */
hs_status hs_block_is_correct(const hs_safety_ctx *c, const hs_block *b, bool *out);

hs_status hs_extends_locked(const hs_safety_ctx *c, const hs_pc *pc, bool *out);
hs_status hs_safe_pc(const hs_safety_ctx *c, const hs_pc *pc, bool *out);
hs_status hs_safe_block(const hs_safety_ctx *c, const hs_block *b, bool *out);
/* safe_block without rule 3 of safe_pc (the lock): for Block Sync only, see sync_client.c. */
hs_status hs_safe_block_ignoring_lock(const hs_safety_ctx *c, const hs_block *b, bool *out);
hs_status hs_safe_nudge(const hs_safety_ctx *c, const hs_nudge *n, uint64_t cur_view, bool *out);

/* spec §3.4. *has tells whether *out was filled (owned by the caller). */
hs_status hs_pc_to_lock(const hs_kv_reader *r, const hs_pc *justify, bool *has, hs_pc *out);
hs_status hs_block_to_commit(const hs_kv_reader *r, const hs_pc *justify, bool *has,
                             hs_hash *out);
hs_status hs_repropose_block(const hs_kv_reader *r, uint64_t cur_view, bool *has, hs_hash *out);

#endif
