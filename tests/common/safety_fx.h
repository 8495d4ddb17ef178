/* tests/common/safety_fx.h - the block-tree fixture shared by the safety-rule unit tests
 * (tests/unit/test_safety.c, test_safety_ext.c): a memory store holding
 *
 *   [0;32] ─ A0 ─ A1 ─ ... ─ A(n-1)    (Generic PCs by `committed`, views 1..n)
 *               ├ V                    (VS-updating: Pending(vsu_key, vsu_power), on PC(A0, 1))
 *               └ F                    (plain sibling of V, justify PC(A0, 1))
 *
 * Each test file keeps its own keys, so it passes the PC signer as a callback.
 * Ownership: safety_fx_close frees everything safety_fx_open made.
 */
#ifndef HS_TESTS_SAFETY_FX_H
#define HS_TESTS_SAFETY_FX_H

#include "hotstuff/crypto.h"
#include "hotstuff/store.h"
#include "safety.h"

#define SAFETY_FX_MAX_A 4

typedef struct safety_fx {
    hs_mem_store *ms;
    hs_kv_store kv;
    hs_kv_reader r;
    int n_a;                                  /* blocks in a[] and pc[] */
    hs_block a[SAFETY_FX_MAX_A], v, f;
    hs_pc pc[SAFETY_FX_MAX_A]; /* pc[i] certifies a[i] at view i + 1 */
    hs_vs_updates vsu;
    hs_vss vss;
    hs_safety_ctx ctx;
} safety_fx;

/* Fills pc with a Generic-or-other PC over (the file's chain, view, block, phase). */
typedef void (*safety_fx_pc_fn)(hs_pc *pc, uint64_t view, const hs_hash *block, hs_phase phase);

typedef struct safety_fx_params {
    uint64_t chain_id;
    const hs_validator_set *committed; /* the committed and previous set */
    int n_a;                           /* 1..SAFETY_FX_MAX_A */
    const hs_key *vsu_key;             /* V's pending update: vsu_key at vsu_power */
    uint64_t vsu_power;
    safety_fx_pc_fn make_pc;
} safety_fx_params;

/* A block at `height` on `justify` whose data hash is `tag` repeated (no data). */
void safety_fx_block(hs_block *b, uint64_t height, const hs_pc *justify, uint8_t tag);
void safety_fx_open(safety_fx *x, const safety_fx_params *p);
void safety_fx_close(safety_fx *x);

#endif
