/* tests/common/samples.c - see samples.h. */
#include "samples.h"

#include <stdlib.h>
#include <string.h>

#include "cu.h"
#include "hotstuff/messages.h"

void sample_pc_at(hs_pc *pc, uint64_t chain, uint64_t view, uint32_t n, hs_phase phase) {
    memset(pc, 0, sizeof *pc);
    pc->chain_id = chain;
    pc->view = view;
    memset(pc->block.b, 0x22, HS_HASH_LEN);
    pc->phase = phase;
    CU_ASSERT_EQUAL_FATAL(hs_sigset_init(&pc->sigs, n), HS_OK);
    for (uint32_t i = 0; i < n; i += 2) {
        pc->sigs.slots[i].present = true;
        memset(pc->sigs.slots[i].sig.b, (int)(0x40 + i), HS_SIG_LEN);
    }
}

void sample_tc_at(hs_tc *tc, uint64_t chain, uint64_t view, uint32_t n) {
    hs_pc pc;
    sample_pc_at(&pc, chain, view, n, HS_PHASE_GENERIC);
    memset(tc, 0, sizeof *tc);
    tc->chain_id = chain;
    tc->view = view;
    tc->sigs = pc.sigs; /* ownership moves */
}

void sample_block_at(hs_block *b, uint64_t height, uint32_t justify_slots, const void *third,
                     size_t third_len) {
    memset(b, 0, sizeof *b);
    b->height = height;
    sample_pc_at(&b->justify, 7, 0x0102030405060708ull, justify_slots, HS_PHASE_DECIDE);
    memset(b->data_hash.b, 0x33, HS_HASH_LEN);
    b->data.n = 3;
    b->data.items = calloc(3, sizeof(hs_bytes));
    CU_ASSERT_FATAL(b->data.items != NULL);
    CU_ASSERT_EQUAL(hs_bytes_set(&b->data.items[0], "datum", 5), HS_OK);
    CU_ASSERT_EQUAL(hs_bytes_set(&b->data.items[1], "", 0), HS_OK); /* an empty datum */
    CU_ASSERT_EQUAL(hs_bytes_set(&b->data.items[2], third, third_len), HS_OK);
}

void sample_keys(hs_keypair *kps, int n, uint8_t tag) {
    for (int i = 0; i < n; i++) {
        uint8_t seed[32] = {0};
        seed[0] = tag;
        seed[1] = (uint8_t)(i + 1);
        CU_ASSERT_FATAL(hs_keypair_from_seed(seed, &kps[i]) == HS_OK);
    }
}

void signed_pc(hs_pc *pc, uint64_t chain, uint64_t view, const hs_hash *block, hs_phase phase,
               const hs_validator_set *vs, unsigned who, const hs_keypair *kps, int n) {
    *pc = (hs_pc){.chain_id = chain, .view = view, .block = *block, .phase = phase};
    uint8_t msg[HS_VOTE_MSG_LEN];
    hs_phase_vote_bytes(chain, view, block, phase, msg);
    CU_ASSERT_FATAL(hs_sigset_init(&pc->sigs, vs->n) == HS_OK);
    for (uint32_t i = 0; i < vs->n; i++) {
        if (!(who & (1u << i))) continue;
        int k = 0;
        while (k < n && memcmp(kps[k].public_key.b, vs->v[i].key.b, HS_KEY_LEN) != 0) k++;
        CU_ASSERT_FATAL(k < n); /* a validator the test has no key for */
        pc->sigs.slots[i].present = true;
        hs_sign(&kps[k], msg, sizeof msg, &pc->sigs.slots[i].sig);
    }
}
