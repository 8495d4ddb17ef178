/* tests/common/samples.h - sample values shared by the codec, mapping and transport tests. */
#ifndef HS_TESTS_SAMPLES_H
#define HS_TESTS_SAMPLES_H

#include <stddef.h>
#include <stdint.h>

#include "hotstuff/crypto.h"

#include "hotstuff/types.h"

/* A PC over (chain, view, block 0x22..) with n slots, every other one signed with filler
 * bytes 0x40 + i (not a real signature: these tests encode, they do not verify). */
void sample_pc_at(hs_pc *pc, uint64_t chain, uint64_t view, uint32_t n, hs_phase phase);
/* A TC over (chain, view) with the signatures of sample_pc_at's n slots. */
void sample_tc_at(hs_tc *tc, uint64_t chain, uint64_t view, uint32_t n);
/* A block at height over sample_pc_at(7, 0x0102030405060708, justify_slots, DECIDE), data
 * hash 0x33.., and three data items: "datum", "" and the third_len bytes of third. The hash is
 * left zero: callers set it (or compute it). */
void sample_block_at(hs_block *b, uint64_t height, uint32_t justify_slots, const void *third,
                     size_t third_len);
/* A PC over (chain, view, block, phase) really signed: slot i of vs is signed when bit i of
 * `who` is set, with the key pair among kps[0..n) whose public key it names. */
void signed_pc(hs_pc *pc, uint64_t chain, uint64_t view, const hs_hash *block, hs_phase phase,
               const hs_validator_set *vs, unsigned who, const hs_keypair *kps, int n);
/* n keypairs from the seeds {tag, i + 1, 0, ...}: the same keys in every run. */
void sample_keys(hs_keypair *kps, int n, uint8_t tag);

#endif
