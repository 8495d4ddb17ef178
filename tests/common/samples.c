/* tests/common/samples.c - see samples.h. */
#include "samples.h"

#include <string.h>

#include "cu.h"

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
