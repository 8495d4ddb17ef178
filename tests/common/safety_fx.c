/* tests/common/safety_fx.c - the safety-rule fixture (safety_fx.h). */
#include "safety_fx.h"

#include <string.h>

#include "bt.h"
#include "cu.h"

void safety_fx_block(hs_block *b, uint64_t height, const hs_pc *justify, uint8_t tag) {
    *b = (hs_block){.height = height};
    CU_ASSERT_FATAL(hs_pc_copy(&b->justify, justify) == HS_OK);
    memset(b->data_hash.b, tag, HS_HASH_LEN);
    CU_ASSERT_FATAL(hs_block_compute_hash(b, &b->hash) == HS_OK);
}

void safety_fx_open(safety_fx *x, const safety_fx_params *p) {
    CU_ASSERT_FATAL(p->n_a >= 1 && p->n_a <= SAFETY_FX_MAX_A);
    memset(x, 0, sizeof *x);
    x->n_a = p->n_a;
    x->ms = hs_mem_store_new();
    CU_ASSERT_FATAL(x->ms != NULL);
    x->kv = hs_mem_store_kv(x->ms);
    x->r = hs_kv_store_reader(&x->kv);
    x->vss = (hs_vss){.committed = *p->committed, .previous = *p->committed,
                      .update_decided = true};
    CU_ASSERT_FATAL(hs_bt_initialize(&x->kv, NULL, &x->vss) == HS_OK);
    x->ctx = (hs_safety_ctx){.r = &x->r, .chain_id = p->chain_id, .vss = &x->vss};

    hs_pc g = {0};
    hs_pc_genesis(&g);
    for (int i = 0; i < x->n_a; i++) {
        safety_fx_block(&x->a[i], (uint64_t)i, i ? &x->pc[i - 1] : &g, (uint8_t)(i + 1));
        p->make_pc(&x->pc[i], (uint64_t)i + 1, &x->a[i].hash, HS_PHASE_GENERIC);
        CU_ASSERT_FATAL(hs_bt_insert(&x->kv, &x->a[i], NULL, NULL) == HS_OK);
    }
    CU_ASSERT_FATAL(hs_vs_updates_insert(&x->vsu, p->vsu_key, p->vsu_power) == HS_OK);
    safety_fx_block(&x->v, 1, &x->pc[0], 0x55);
    CU_ASSERT_FATAL(hs_bt_insert(&x->kv, &x->v, NULL, &x->vsu) == HS_OK);
    safety_fx_block(&x->f, 1, &x->pc[0], 0x66);
    CU_ASSERT_FATAL(hs_bt_insert(&x->kv, &x->f, NULL, NULL) == HS_OK);
    hs_pc_free(&g);
}

void safety_fx_close(safety_fx *x) {
    for (int i = 0; i < x->n_a; i++) {
        hs_block_free(&x->a[i]);
        hs_pc_free(&x->pc[i]);
    }
    hs_block_free(&x->v);
    hs_block_free(&x->f);
    hs_vs_updates_free(&x->vsu);
    hs_mem_store_free(x->ms);
}
