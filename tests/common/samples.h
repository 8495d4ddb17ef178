/* tests/common/samples.h - sample values shared by the codec, mapping and transport tests. */
#ifndef HS_TESTS_SAMPLES_H
#define HS_TESTS_SAMPLES_H

#include <stdint.h>

#include "hotstuff/types.h"

/* A PC over (chain, view, block 0x22..) with n slots, every other one signed with filler
 * bytes 0x40 + i (not a real signature: these tests encode, they do not verify). */
void sample_pc_at(hs_pc *pc, uint64_t chain, uint64_t view, uint32_t n, hs_phase phase);

#endif
