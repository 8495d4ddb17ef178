/* test_collectors.c - vote collectors and collector pairs (spec §2.11, §14.8).
 *
 * Votes are signed for real (hs_keypair_from_seed, hs_sign over the spec's signed bytes) and
 * every certificate a collector returns is checked to be correctly signed by the set it was
 * collected for (spec §2.10), slot by slot.
 */
#include <string.h>

#include "collectors.h"
#include "cu.h"
#include "hotstuff/crypto.h"

#define CHAIN 7
#define VIEW 5
#define N_KEYS 8

static hs_keypair keys[N_KEYS];

static void setup_keys(void) {
    static bool done;
    if (done) return;
    CU_ASSERT_FATAL(hs_crypto_init() == HS_OK);
    for (int i = 0; i < N_KEYS; i++) {
        uint8_t seed[32];
        memset(seed, i + 1, sizeof seed);
        CU_ASSERT_FATAL(hs_keypair_from_seed(seed, &keys[i]) == HS_OK);
    }
    done = true;
}

/* A validator set of keys[idx[i]] with powers pow[i]. */
static void mk_vs(hs_validator_set *vs, int n, const int *idx, const uint64_t *pow) {
    memset(vs, 0, sizeof *vs);
    for (int i = 0; i < n; i++) CU_ASSERT_FATAL(hs_vs_put(vs, &keys[idx[i]].public_key, pow[i]) == HS_OK);
}

static hs_hash block_hash(uint8_t tag) {
    hs_hash h;
    memset(h.b, tag, sizeof h.b);
    return h;
}

static hs_phase_vote pvote(int signer, uint64_t chain, uint64_t view, uint8_t block,
                           hs_phase phase) {
    hs_phase_vote v;
    memset(&v, 0, sizeof v);
    v.chain_id = chain;
    v.view = view;
    v.block = block_hash(block);
    v.phase = phase;
    uint8_t msg[HS_VOTE_MSG_LEN];
    hs_phase_vote_bytes(chain, view, &v.block, phase, msg);
    hs_sign(&keys[signer], msg, sizeof msg, &v.sig);
    return v;
}

static hs_timeout_vote tvote(int signer, uint64_t chain, uint64_t view) {
    hs_timeout_vote v;
    memset(&v, 0, sizeof v);
    v.chain_id = chain;
    v.view = view;
    uint8_t msg[HS_TIMEOUT_MSG_LEN];
    hs_timeout_vote_bytes(chain, view, msg);
    hs_sign(&keys[signer], msg, sizeof msg, &v.sig);
    return v;
}

/* spec §2.10 is_correctly_signed. */
static bool correctly_signed(const hs_sigset *s, const hs_validator_set *vs, const uint8_t *msg,
                             size_t len) {
    if (s->n != vs->n) return false;
    hs_u128 tally = 0;
    for (uint32_t i = 0; i < s->n; i++) {
        if (!s->slots[i].present) continue;
        if (!hs_verify(&vs->v[i].key, msg, len, &s->slots[i].sig)) return false;
        tally += vs->v[i].power;
    }
    return tally >= hs_vs_quorum(vs);
}

static bool pc_ok(const hs_pc *pc, const hs_validator_set *vs) {
    uint8_t msg[HS_VOTE_MSG_LEN];
    hs_phase_vote_bytes(pc->chain_id, pc->view, &pc->block, pc->phase, msg);
    return correctly_signed(&pc->sigs, vs, msg, sizeof msg);
}

static bool tc_ok(const hs_tc *tc, const hs_validator_set *vs) {
    uint8_t msg[HS_TIMEOUT_MSG_LEN];
    hs_timeout_vote_bytes(tc->chain_id, tc->view, msg);
    return correctly_signed(&tc->sigs, vs, msg, sizeof msg);
}

static bool slot_present(const hs_sigset *s, const hs_validator_set *vs, int signer) {
    int64_t pos = hs_vs_find(vs, &keys[signer].public_key);
    return pos >= 0 && (uint32_t)pos < s->n && s->slots[pos].present;
}

/* A decided vss over one set (the usual steady state). */
static void mk_vss(hs_vss *vss, const hs_validator_set *cvs, const hs_validator_set *pvs,
                   bool decided) {
    memset(vss, 0, sizeof *vss);
    CU_ASSERT_FATAL(hs_vs_copy(&vss->committed, cvs) == HS_OK);
    CU_ASSERT_FATAL(hs_vs_copy(&vss->previous, pvs) == HS_OK);
    vss->has_update_height = true;
    vss->update_height = 3;
    vss->update_decided = decided;
}

/* Offers a phase vote; returns whether a PC came out (into *pc, which the caller frees). */
static bool offer(hs_phase_collectors *c, int signer, const hs_phase_vote *v, hs_pc *pc) {
    bool got = true;
    memset(pc, 0, sizeof *pc);
    CU_ASSERT_EQUAL_FATAL(hs_phase_collectors_collect(c, &keys[signer].public_key, v, &got, pc),
                          HS_OK);
    return got;
}

static bool toffer(hs_timeout_collectors *c, int signer, const hs_timeout_vote *v, hs_tc *tc) {
    bool got = true;
    memset(tc, 0, sizeof *tc);
    CU_ASSERT_EQUAL_FATAL(
        hs_timeout_collectors_collect(c, &keys[signer].public_key, v, &got, tc), HS_OK);
    return got;
}

/* ---- PhaseVoteCollector ------------------------------------------------------------------- */

/* Powers 1,2,3,4: total 10, quorum floor(20/3)+1 = 7. Tally 6 is short; 7 is a quorum. */
static void test_phase_weighted_quorum(void) {
    setup_keys();
    hs_validator_set vs;
    mk_vs(&vs, 4, (int[]){0, 1, 2, 3}, (uint64_t[]){1, 2, 3, 4});
    CU_ASSERT_TRUE(hs_vs_quorum(&vs) == 7);
    hs_vss vss;
    mk_vss(&vss, &vs, &vs, true);
    hs_phase_collectors c;
    CU_ASSERT_EQUAL_FATAL(hs_phase_collectors_init(&c, CHAIN, VIEW, &vss), HS_OK);
    CU_ASSERT_FALSE(c.has_pvs);

    hs_pc pc;
    hs_phase_vote v3 = pvote(3, CHAIN, VIEW, 0xaa, HS_PHASE_PREPARE); /* power 4 */
    hs_phase_vote v1 = pvote(1, CHAIN, VIEW, 0xaa, HS_PHASE_PREPARE); /* power 2 */
    hs_phase_vote v0 = pvote(0, CHAIN, VIEW, 0xaa, HS_PHASE_PREPARE); /* power 1 */
    CU_ASSERT_FALSE(offer(&c, 3, &v3, &pc));
    CU_ASSERT_FALSE(offer(&c, 1, &v1, &pc)); /* 6 < 7 */
    CU_ASSERT_EQUAL(c.cvs.n_entries, 1);
    CU_ASSERT_TRUE(c.cvs.entries[0].power == 6);
    CU_ASSERT_TRUE_FATAL(offer(&c, 0, &v0, &pc)); /* 7: exactly the quorum */

    CU_ASSERT_EQUAL(pc.chain_id, CHAIN);
    CU_ASSERT_EQUAL(pc.view, VIEW);
    CU_ASSERT_EQUAL(pc.phase, HS_PHASE_PREPARE);
    CU_ASSERT_EQUAL(memcmp(pc.block.b, block_hash(0xaa).b, HS_HASH_LEN), 0);
    CU_ASSERT_EQUAL(pc.sigs.n, 4);
    CU_ASSERT_EQUAL(hs_sigset_count(&pc.sigs), 3);
    CU_ASSERT_TRUE(slot_present(&pc.sigs, &vs, 0));
    CU_ASSERT_TRUE(slot_present(&pc.sigs, &vs, 1));
    CU_ASSERT_FALSE(slot_present(&pc.sigs, &vs, 2));
    CU_ASSERT_TRUE(slot_present(&pc.sigs, &vs, 3));
    CU_ASSERT_TRUE(pc_ok(&pc, &vs));
    CU_ASSERT_EQUAL(c.cvs.n_entries, 0); /* the entry is gone */
    hs_pc_free(&pc);

    /* The heaviest three alone: 3+4 = 7 also reaches quorum with two signatures. */
    hs_phase_vote w3 = pvote(3, CHAIN, VIEW, 0xbb, HS_PHASE_GENERIC);
    hs_phase_vote w2 = pvote(2, CHAIN, VIEW, 0xbb, HS_PHASE_GENERIC);
    CU_ASSERT_FALSE(offer(&c, 3, &w3, &pc));
    CU_ASSERT_TRUE_FATAL(offer(&c, 2, &w2, &pc));
    CU_ASSERT_EQUAL(hs_sigset_count(&pc.sigs), 2);
    CU_ASSERT_TRUE(pc_ok(&pc, &vs));
    hs_pc_free(&pc);

    hs_phase_collectors_free(&c);
    hs_vss_free(&vss);
    hs_vs_free(&vs);
}

/* Quorum rule examples of spec §1.7 through the collector: P=3 needs all three. */
static void test_phase_quorum_equal_powers(void) {
    setup_keys();
    hs_validator_set vs;
    mk_vs(&vs, 3, (int[]){0, 1, 2}, (uint64_t[]){1, 1, 1});
    hs_vss vss;
    mk_vss(&vss, &vs, &vs, true);
    hs_phase_collectors c;
    CU_ASSERT_EQUAL_FATAL(hs_phase_collectors_init(&c, CHAIN, VIEW, &vss), HS_OK);
    hs_pc pc;
    for (int i = 0; i < 2; i++) {
        hs_phase_vote v = pvote(i, CHAIN, VIEW, 1, HS_PHASE_DECIDE);
        CU_ASSERT_FALSE(offer(&c, i, &v, &pc));
    }
    hs_phase_vote v = pvote(2, CHAIN, VIEW, 1, HS_PHASE_DECIDE);
    CU_ASSERT_TRUE_FATAL(offer(&c, 2, &v, &pc));
    CU_ASSERT_EQUAL(hs_sigset_count(&pc.sigs), 3);
    CU_ASSERT_TRUE(pc_ok(&pc, &vs));
    hs_pc_free(&pc);
    hs_phase_collectors_free(&c);
    hs_vss_free(&vss);
    hs_vs_free(&vs);
}

static void test_phase_duplicate_signer(void) {
    setup_keys();
    hs_validator_set vs;
    mk_vs(&vs, 4, (int[]){0, 1, 2, 3}, (uint64_t[]){1, 1, 1, 1}); /* quorum 3 */
    hs_vss vss;
    mk_vss(&vss, &vs, &vs, true);
    hs_phase_collectors c;
    CU_ASSERT_EQUAL_FATAL(hs_phase_collectors_init(&c, CHAIN, VIEW, &vss), HS_OK);
    hs_pc pc;
    hs_phase_vote a = pvote(0, CHAIN, VIEW, 9, HS_PHASE_COMMIT);
    hs_phase_vote b = pvote(1, CHAIN, VIEW, 9, HS_PHASE_COMMIT);
    CU_ASSERT_FALSE(offer(&c, 0, &a, &pc));
    CU_ASSERT_FALSE(offer(&c, 0, &a, &pc));
    CU_ASSERT_FALSE(offer(&c, 0, &a, &pc));
    CU_ASSERT_TRUE(c.cvs.entries[0].power == 1);
    CU_ASSERT_FALSE(offer(&c, 1, &b, &pc));
    CU_ASSERT_FALSE(offer(&c, 1, &b, &pc));
    CU_ASSERT_TRUE(c.cvs.entries[0].power == 2);
    /* The first signature stays: a second vote of the same signer does not replace it. */
    int64_t pos = hs_vs_find(&vs, &keys[0].public_key);
    CU_ASSERT_EQUAL(memcmp(c.cvs.entries[0].sigs.slots[pos].sig.b, a.sig.b, HS_SIG_LEN), 0);
    hs_phase_vote d = pvote(2, CHAIN, VIEW, 9, HS_PHASE_COMMIT);
    CU_ASSERT_TRUE_FATAL(offer(&c, 2, &d, &pc));
    CU_ASSERT_EQUAL(hs_sigset_count(&pc.sigs), 3);
    CU_ASSERT_TRUE(pc_ok(&pc, &vs));
    hs_pc_free(&pc);
    hs_phase_collectors_free(&c);
    hs_vss_free(&vss);
    hs_vs_free(&vs);
}

static void test_phase_ignored_votes(void) {
    setup_keys();
    hs_validator_set vs;
    mk_vs(&vs, 3, (int[]){0, 1, 2}, (uint64_t[]){1, 1, 1});
    hs_vss vss;
    mk_vss(&vss, &vs, &vs, true);
    hs_phase_collectors c;
    CU_ASSERT_EQUAL_FATAL(hs_phase_collectors_init(&c, CHAIN, VIEW, &vss), HS_OK);
    hs_pc pc;

    hs_phase_vote nonmember = pvote(5, CHAIN, VIEW, 1, HS_PHASE_GENERIC);
    hs_phase_vote wrong_view = pvote(0, CHAIN, VIEW + 1, 1, HS_PHASE_GENERIC);
    hs_phase_vote old_view = pvote(0, CHAIN, VIEW - 1, 1, HS_PHASE_GENERIC);
    hs_phase_vote wrong_chain = pvote(0, CHAIN + 1, VIEW, 1, HS_PHASE_GENERIC);
    CU_ASSERT_FALSE(offer(&c, 5, &nonmember, &pc));
    CU_ASSERT_FALSE(offer(&c, 0, &wrong_view, &pc));
    CU_ASSERT_FALSE(offer(&c, 0, &old_view, &pc));
    CU_ASSERT_FALSE(offer(&c, 0, &wrong_chain, &pc));
    CU_ASSERT_EQUAL(c.cvs.n_entries, 0); /* none of them opened an entry */

    /* Three good votes still make a PC afterwards, with nothing from the ignored ones. */
    for (int i = 0; i < 2; i++) {
        hs_phase_vote v = pvote(i, CHAIN, VIEW, 1, HS_PHASE_GENERIC);
        CU_ASSERT_FALSE(offer(&c, i, &v, &pc));
    }
    hs_phase_vote v = pvote(2, CHAIN, VIEW, 1, HS_PHASE_GENERIC);
    CU_ASSERT_TRUE_FATAL(offer(&c, 2, &v, &pc));
    CU_ASSERT_EQUAL(pc.view, VIEW);
    CU_ASSERT_TRUE(pc_ok(&pc, &vs));
    hs_pc_free(&pc);

    /* Invalid arguments. */
    bool got;
    CU_ASSERT_EQUAL(hs_phase_collectors_collect(&c, NULL, &v, &got, &pc), HS_ERR_INVALID);
    CU_ASSERT_EQUAL(hs_phase_collectors_collect(NULL, &keys[0].public_key, &v, &got, &pc),
                    HS_ERR_INVALID);
    hs_phase_collectors_free(&c);
    hs_vss_free(&vss);
    hs_vs_free(&vs);
}

/* Votes for different (block, phase) pairs are tallied apart. */
static void test_phase_separate_entries(void) {
    setup_keys();
    hs_validator_set vs;
    mk_vs(&vs, 4, (int[]){0, 1, 2, 3}, (uint64_t[]){1, 1, 1, 1});
    hs_vss vss;
    mk_vss(&vss, &vs, &vs, true);
    hs_phase_collectors c;
    CU_ASSERT_EQUAL_FATAL(hs_phase_collectors_init(&c, CHAIN, VIEW, &vss), HS_OK);
    hs_pc pc;
    hs_phase_vote a = pvote(0, CHAIN, VIEW, 1, HS_PHASE_PREPARE);
    hs_phase_vote b = pvote(1, CHAIN, VIEW, 1, HS_PHASE_PRECOMMIT); /* other phase */
    hs_phase_vote d = pvote(2, CHAIN, VIEW, 2, HS_PHASE_PREPARE);   /* other block */
    CU_ASSERT_FALSE(offer(&c, 0, &a, &pc));
    CU_ASSERT_FALSE(offer(&c, 1, &b, &pc));
    CU_ASSERT_FALSE(offer(&c, 2, &d, &pc));
    CU_ASSERT_EQUAL(c.cvs.n_entries, 3);
    hs_phase_collectors_free(&c);
    hs_vss_free(&vss);
    hs_vs_free(&vs);
}

/* After a PC the entry is removed: further votes for the same (block, phase) start over. */
static void test_phase_entry_removed_after_pc(void) {
    setup_keys();
    hs_validator_set vs;
    mk_vs(&vs, 5, (int[]){0, 1, 2, 3, 4}, (uint64_t[]){1, 1, 1, 1, 1}); /* quorum 4 */
    hs_vss vss;
    mk_vss(&vss, &vs, &vs, true);
    hs_phase_collectors c;
    CU_ASSERT_EQUAL_FATAL(hs_phase_collectors_init(&c, CHAIN, VIEW, &vss), HS_OK);
    hs_pc pc;
    hs_phase_vote v[5];
    for (int i = 0; i < 5; i++) v[i] = pvote(i, CHAIN, VIEW, 3, HS_PHASE_GENERIC);

    /* An unrelated entry before it, to check removal keeps the others intact. */
    hs_phase_vote other = pvote(4, CHAIN, VIEW, 4, HS_PHASE_GENERIC);
    CU_ASSERT_FALSE(offer(&c, 4, &other, &pc));

    CU_ASSERT_FALSE(offer(&c, 0, &v[0], &pc));
    CU_ASSERT_FALSE(offer(&c, 1, &v[1], &pc));
    CU_ASSERT_FALSE(offer(&c, 2, &v[2], &pc));
    CU_ASSERT_TRUE_FATAL(offer(&c, 3, &v[3], &pc));
    CU_ASSERT_EQUAL(hs_sigset_count(&pc.sigs), 4);
    CU_ASSERT_TRUE(pc_ok(&pc, &vs));
    hs_pc_free(&pc);
    CU_ASSERT_EQUAL(c.cvs.n_entries, 1);
    CU_ASSERT_EQUAL(memcmp(c.cvs.entries[0].block.b, block_hash(4).b, HS_HASH_LEN), 0);

    /* Signers of the PC hold no signature any more: a later vote opens a fresh tally instead
     * of producing a larger PC. */
    CU_ASSERT_FALSE(offer(&c, 0, &v[0], &pc));
    CU_ASSERT_EQUAL(c.cvs.n_entries, 2);
    CU_ASSERT_TRUE(c.cvs.entries[1].power == 1);

    /* The unrelated entry still completes. */
    for (int i = 1; i <= 3; i++) {
        hs_phase_vote o = pvote(i, CHAIN, VIEW, 4, HS_PHASE_GENERIC);
        CU_ASSERT_EQUAL(offer(&c, i, &o, &pc), i == 3);
    }
    CU_ASSERT_TRUE(pc_ok(&pc, &vs));
    hs_pc_free(&pc);
    CU_ASSERT_EQUAL(c.cvs.n_entries, 1);
    hs_phase_collectors_free(&c);
    hs_vss_free(&vss);
    hs_vs_free(&vs);
}

/* A Byzantine signer voting for many blocks opens one entry only, and cannot keep the honest
 * quorum from forming however many junk votes arrive first. */
static void test_phase_junk_votes_bounded(void) {
    setup_keys();
    hs_validator_set vs;
    mk_vs(&vs, 4, (int[]){0, 1, 2, 3}, (uint64_t[]){1, 1, 1, 1}); /* quorum 3 */
    hs_vss vss;
    mk_vss(&vss, &vs, &vs, true);
    hs_phase_collectors c;
    CU_ASSERT_EQUAL_FATAL(hs_phase_collectors_init(&c, CHAIN, VIEW, &vss), HS_OK);
    hs_pc pc;
    for (int i = 0; i < 200; i++) {
        hs_phase_vote v = pvote(0, CHAIN, VIEW, (uint8_t)(i + 10), (hs_phase)(i % 5));
        CU_ASSERT_FALSE(offer(&c, 0, &v, &pc));
    }
    CU_ASSERT_EQUAL(c.cvs.n_entries, 1);
    /* The Byzantine signer may still add its signature to an entry others opened. */
    hs_phase_vote a = pvote(1, CHAIN, VIEW, 7, HS_PHASE_GENERIC);
    hs_phase_vote z = pvote(0, CHAIN, VIEW, 7, HS_PHASE_GENERIC);
    hs_phase_vote b = pvote(2, CHAIN, VIEW, 7, HS_PHASE_GENERIC);
    CU_ASSERT_FALSE(offer(&c, 1, &a, &pc));
    CU_ASSERT_FALSE(offer(&c, 0, &z, &pc));
    CU_ASSERT_TRUE_FATAL(offer(&c, 2, &b, &pc));
    CU_ASSERT_TRUE(pc_ok(&pc, &vs));
    hs_pc_free(&pc);
    /* Entries never exceed the validator set, whatever is offered. */
    for (int s = 0; s < 4; s++)
        for (int i = 0; i < 50; i++) {
            hs_phase_vote v = pvote(s, CHAIN, VIEW, (uint8_t)(100 + i), HS_PHASE_PREPARE);
            if (offer(&c, s, &v, &pc)) hs_pc_free(&pc);
        }
    CU_ASSERT_TRUE(c.cvs.n_entries <= vs.n);
    hs_phase_collectors_free(&c);
    hs_vss_free(&vss);
    hs_vs_free(&vs);
}

/* ---- TimeoutVoteCollector ----------------------------------------------------------------- */

static void test_timeout_growing_tcs(void) {
    setup_keys();
    hs_validator_set vs;
    mk_vs(&vs, 5, (int[]){0, 1, 2, 3, 4}, (uint64_t[]){1, 1, 1, 1, 1}); /* quorum 4 */
    hs_vss vss;
    mk_vss(&vss, &vs, &vs, true);
    hs_timeout_collectors c;
    CU_ASSERT_EQUAL_FATAL(hs_timeout_collectors_init(&c, CHAIN, VIEW, &vss), HS_OK);
    hs_tc tc;
    for (int i = 0; i < 3; i++) {
        hs_timeout_vote v = tvote(i, CHAIN, VIEW);
        CU_ASSERT_FALSE(toffer(&c, i, &v, &tc));
    }
    hs_timeout_vote v3 = tvote(3, CHAIN, VIEW);
    CU_ASSERT_TRUE_FATAL(toffer(&c, 3, &v3, &tc));
    CU_ASSERT_EQUAL(tc.chain_id, CHAIN);
    CU_ASSERT_EQUAL(tc.view, VIEW);
    CU_ASSERT_EQUAL(hs_sigset_count(&tc.sigs), 4);
    CU_ASSERT_TRUE(tc_ok(&tc, &vs));
    hs_tc_free(&tc);

    /* A duplicate after quorum yields nothing; a new signer yields a larger TC. */
    CU_ASSERT_FALSE(toffer(&c, 3, &v3, &tc));
    hs_timeout_vote v4 = tvote(4, CHAIN, VIEW);
    CU_ASSERT_TRUE_FATAL(toffer(&c, 4, &v4, &tc));
    CU_ASSERT_EQUAL(hs_sigset_count(&tc.sigs), 5);
    CU_ASSERT_TRUE(tc_ok(&tc, &vs));
    hs_tc_free(&tc);
    CU_ASSERT_FALSE(toffer(&c, 4, &v4, &tc));
    /* The collector keeps its own copy: the TCs handed out were independent. */
    CU_ASSERT_EQUAL(hs_sigset_count(&c.cvs.sigs), 5);

    hs_timeout_collectors_free(&c);
    hs_vss_free(&vss);
    hs_vs_free(&vs);
}

static void test_timeout_weighted_and_ignored(void) {
    setup_keys();
    hs_validator_set vs;
    mk_vs(&vs, 3, (int[]){0, 1, 2}, (uint64_t[]){5, 1, 1}); /* total 7, quorum 5 */
    CU_ASSERT_TRUE(hs_vs_quorum(&vs) == 5);
    hs_vss vss;
    mk_vss(&vss, &vs, &vs, true);
    hs_timeout_collectors c;
    CU_ASSERT_EQUAL_FATAL(hs_timeout_collectors_init(&c, CHAIN, VIEW, &vss), HS_OK);
    hs_tc tc;
    hs_timeout_vote nonmember = tvote(6, CHAIN, VIEW);
    hs_timeout_vote wrong_view = tvote(0, CHAIN, VIEW + 1);
    hs_timeout_vote wrong_chain = tvote(0, CHAIN + 1, VIEW);
    CU_ASSERT_FALSE(toffer(&c, 6, &nonmember, &tc));
    CU_ASSERT_FALSE(toffer(&c, 0, &wrong_view, &tc));
    CU_ASSERT_FALSE(toffer(&c, 0, &wrong_chain, &tc));
    CU_ASSERT_TRUE(c.cvs.power == 0);
    hs_timeout_vote a = tvote(1, CHAIN, VIEW);
    hs_timeout_vote b = tvote(2, CHAIN, VIEW);
    CU_ASSERT_FALSE(toffer(&c, 1, &a, &tc));
    CU_ASSERT_FALSE(toffer(&c, 2, &b, &tc));
    hs_timeout_vote heavy = tvote(0, CHAIN, VIEW);
    CU_ASSERT_TRUE_FATAL(toffer(&c, 0, &heavy, &tc)); /* the heavy validator alone is 5 */
    CU_ASSERT_EQUAL(hs_sigset_count(&tc.sigs), 3);
    CU_ASSERT_TRUE(tc_ok(&tc, &vs));
    hs_tc_free(&tc);
    hs_timeout_collectors_free(&c);

    /* Heavy validator first: a TC on its single vote. */
    CU_ASSERT_EQUAL_FATAL(hs_timeout_collectors_init(&c, CHAIN, VIEW, &vss), HS_OK);
    CU_ASSERT_TRUE_FATAL(toffer(&c, 0, &heavy, &tc));
    CU_ASSERT_EQUAL(hs_sigset_count(&tc.sigs), 1);
    CU_ASSERT_TRUE(tc_ok(&tc, &vs));
    hs_tc_free(&tc);
    CU_ASSERT_TRUE_FATAL(toffer(&c, 1, &a, &tc));
    CU_ASSERT_EQUAL(hs_sigset_count(&tc.sigs), 2);
    hs_tc_free(&tc);
    hs_timeout_collectors_free(&c);
    hs_vss_free(&vss);
    hs_vs_free(&vs);
}

/* ---- ActiveCollectorPair ------------------------------------------------------------------ */

/* While the update is undecided, votes of PVS members that are not CVS members still make a
 * PC, signed by (and sized to) the PVS. Once decided, the PVS collector is gone. */
static void test_pair_pvs_while_undecided(void) {
    setup_keys();
    hs_validator_set cvs, pvs;
    mk_vs(&cvs, 4, (int[]){0, 1, 2, 3}, (uint64_t[]){1, 1, 1, 1});
    mk_vs(&pvs, 4, (int[]){0, 1, 4, 5}, (uint64_t[]){1, 1, 1, 1});
    hs_vss vss;
    mk_vss(&vss, &cvs, &pvs, false);
    hs_phase_collectors c;
    CU_ASSERT_EQUAL_FATAL(hs_phase_collectors_init(&c, CHAIN, VIEW, &vss), HS_OK);
    CU_ASSERT_TRUE(c.has_pvs);
    CU_ASSERT_TRUE(hs_vs_equal(&c.pvs.vs, &pvs));

    hs_pc pc;
    hs_phase_vote v0 = pvote(0, CHAIN, VIEW, 1, HS_PHASE_DECIDE);
    hs_phase_vote v1 = pvote(1, CHAIN, VIEW, 1, HS_PHASE_DECIDE);
    hs_phase_vote v4 = pvote(4, CHAIN, VIEW, 1, HS_PHASE_DECIDE);
    CU_ASSERT_FALSE(offer(&c, 0, &v0, &pc));
    CU_ASSERT_FALSE(offer(&c, 1, &v1, &pc));
    CU_ASSERT_TRUE_FATAL(offer(&c, 4, &v4, &pc)); /* only in the PVS */
    CU_ASSERT_EQUAL(pc.sigs.n, pvs.n);
    CU_ASSERT_TRUE(pc_ok(&pc, &pvs));
    CU_ASSERT_FALSE(pc_ok(&pc, &cvs));
    hs_pc_free(&pc);
    /* The CVS collector still holds its 2 votes. */
    CU_ASSERT_EQUAL(c.cvs.n_entries, 1);

    /* Decided: the PVS collector is dropped, PVS-only signers are ignored. */
    vss.update_decided = true;
    CU_ASSERT_EQUAL_FATAL(hs_phase_collectors_update(&c, &vss), HS_OK);
    CU_ASSERT_FALSE(c.has_pvs);
    CU_ASSERT_EQUAL(c.cvs.n_entries, 1); /* CVS unchanged: collector kept */
    hs_phase_vote v5 = pvote(5, CHAIN, VIEW, 1, HS_PHASE_DECIDE);
    CU_ASSERT_FALSE(offer(&c, 5, &v5, &pc));
    CU_ASSERT_FALSE(offer(&c, 4, &v4, &pc));
    /* Repeated updates while decided keep it dropped (the §14.8 fix). */
    CU_ASSERT_EQUAL_FATAL(hs_phase_collectors_update(&c, &vss), HS_OK);
    CU_ASSERT_FALSE(c.has_pvs);
    CU_ASSERT_EQUAL_FATAL(hs_phase_collectors_update(&c, &vss), HS_OK);
    CU_ASSERT_FALSE(c.has_pvs);
    hs_phase_vote v2 = pvote(2, CHAIN, VIEW, 1, HS_PHASE_DECIDE);
    CU_ASSERT_TRUE_FATAL(offer(&c, 2, &v2, &pc));
    CU_ASSERT_TRUE(pc_ok(&pc, &cvs));
    hs_pc_free(&pc);

    hs_phase_collectors_free(&c);
    hs_vss_free(&vss);
    hs_vs_free(&cvs);
    hs_vs_free(&pvs);
}

/* The CVS collector is offered the vote first; if it produces a PC the PVS collector never
 * sees that vote. */
static void test_pair_cvs_first(void) {
    setup_keys();
    hs_validator_set cvs, pvs;
    mk_vs(&cvs, 3, (int[]){0, 1, 2}, (uint64_t[]){1, 1, 1});
    mk_vs(&pvs, 4, (int[]){0, 1, 2, 3}, (uint64_t[]){1, 1, 1, 1});
    hs_vss vss;
    mk_vss(&vss, &cvs, &pvs, false);
    hs_phase_collectors c;
    CU_ASSERT_EQUAL_FATAL(hs_phase_collectors_init(&c, CHAIN, VIEW, &vss), HS_OK);
    hs_pc pc;
    hs_phase_vote v0 = pvote(0, CHAIN, VIEW, 1, HS_PHASE_GENERIC);
    hs_phase_vote v1 = pvote(1, CHAIN, VIEW, 1, HS_PHASE_GENERIC);
    hs_phase_vote v2 = pvote(2, CHAIN, VIEW, 1, HS_PHASE_GENERIC);
    CU_ASSERT_FALSE(offer(&c, 0, &v0, &pc));
    CU_ASSERT_FALSE(offer(&c, 1, &v1, &pc));
    CU_ASSERT_EQUAL(c.pvs.n_entries, 1);
    CU_ASSERT_TRUE(c.pvs.entries[0].power == 2);
    CU_ASSERT_TRUE_FATAL(offer(&c, 2, &v2, &pc)); /* CVS quorum: 3 of 3 */
    CU_ASSERT_EQUAL(pc.sigs.n, cvs.n);
    CU_ASSERT_TRUE(pc_ok(&pc, &cvs));
    hs_pc_free(&pc);
    CU_ASSERT_TRUE(c.pvs.entries[0].power == 2); /* the PVS collector did not get v2 */
    /* A vote the CVS collector ignores (a PVS-only signer) reaches the PVS collector, which
     * then completes. */
    hs_phase_vote v3 = pvote(3, CHAIN, VIEW, 1, HS_PHASE_GENERIC);
    CU_ASSERT_TRUE_FATAL(offer(&c, 3, &v3, &pc)); /* 3 of 4 in the PVS */
    CU_ASSERT_EQUAL(pc.sigs.n, pvs.n);
    CU_ASSERT_TRUE(pc_ok(&pc, &pvs));
    hs_pc_free(&pc);
    hs_phase_collectors_free(&c);
    hs_vss_free(&vss);
    hs_vs_free(&cvs);
    hs_vs_free(&pvs);
}

/* The update rule of spec §2.11 (C-port), step by step. */
static void test_pair_update_rule(void) {
    setup_keys();
    hs_validator_set vs1, vs2, vs3;
    mk_vs(&vs1, 4, (int[]){0, 1, 2, 3}, (uint64_t[]){1, 1, 1, 1});
    mk_vs(&vs2, 4, (int[]){0, 1, 2, 4}, (uint64_t[]){1, 1, 1, 1});
    mk_vs(&vs3, 4, (int[]){0, 1, 5, 6}, (uint64_t[]){1, 1, 1, 1});
    hs_vss vss;
    mk_vss(&vss, &vs1, &vs1, true);
    hs_phase_collectors c;
    CU_ASSERT_EQUAL_FATAL(hs_phase_collectors_init(&c, CHAIN, VIEW, &vss), HS_OK);
    CU_ASSERT_FALSE(c.has_pvs);
    hs_pc pc;
    hs_phase_vote v0 = pvote(0, CHAIN, VIEW, 1, HS_PHASE_GENERIC);
    hs_phase_vote v1 = pvote(1, CHAIN, VIEW, 1, HS_PHASE_GENERIC);
    CU_ASSERT_FALSE(offer(&c, 0, &v0, &pc));
    CU_ASSERT_FALSE(offer(&c, 1, &v1, &pc));

    /* Undecided with PVS == CVS collector's set: the PVS collector is a clone, votes and all. */
    vss.update_decided = false;
    CU_ASSERT_EQUAL_FATAL(hs_phase_collectors_update(&c, &vss), HS_OK);
    CU_ASSERT_TRUE_FATAL(c.has_pvs);
    CU_ASSERT_EQUAL(c.cvs.n_entries, 1);
    CU_ASSERT_EQUAL_FATAL(c.pvs.n_entries, 1);
    CU_ASSERT_TRUE(c.pvs.entries[0].power == 2);
    CU_ASSERT_TRUE(hs_vs_equal(&c.pvs.vs, &vs1));
    CU_ASSERT_EQUAL(c.pvs.chain_id, CHAIN);
    CU_ASSERT_EQUAL(c.pvs.view, VIEW);
    CU_ASSERT_PTR_NOT_EQUAL(c.pvs.entries[0].sigs.slots, c.cvs.entries[0].sigs.slots);
    CU_ASSERT_EQUAL(memcmp(c.pvs.entries[0].sigs.slots, c.cvs.entries[0].sigs.slots,
                           c.cvs.entries[0].sigs.n * sizeof(hs_sig_slot)), 0);

    /* Same vss again: nothing is replaced (the PVS collector keeps what it has). */
    hs_phase_vote v2 = pvote(2, CHAIN, VIEW, 1, HS_PHASE_GENERIC);
    CU_ASSERT_TRUE_FATAL(offer(&c, 2, &v2, &pc)); /* CVS completes; PVS not offered */
    hs_pc_free(&pc);
    CU_ASSERT_EQUAL(c.cvs.n_entries, 0);
    CU_ASSERT_EQUAL(c.pvs.n_entries, 1);
    CU_ASSERT_EQUAL_FATAL(hs_phase_collectors_update(&c, &vss), HS_OK);
    CU_ASSERT_EQUAL(c.cvs.n_entries, 0);
    CU_ASSERT_EQUAL(c.pvs.n_entries, 1);

    /* The PVS changes to a set other than the CVS: a fresh PVS collector. */
    hs_vs_free(&vss.previous);
    CU_ASSERT_FATAL(hs_vs_copy(&vss.previous, &vs2) == HS_OK);
    CU_ASSERT_EQUAL_FATAL(hs_phase_collectors_update(&c, &vss), HS_OK);
    CU_ASSERT_TRUE(c.has_pvs);
    CU_ASSERT_TRUE(hs_vs_equal(&c.pvs.vs, &vs2));
    CU_ASSERT_EQUAL(c.pvs.n_entries, 0);

    /* The CVS changes: a fresh CVS collector (its votes are dropped). */
    CU_ASSERT_FALSE(offer(&c, 0, &v0, &pc)); /* one vote in each collector */
    CU_ASSERT_EQUAL(c.cvs.n_entries, 1);
    CU_ASSERT_EQUAL(c.pvs.n_entries, 1);
    hs_vs_free(&vss.committed);
    CU_ASSERT_FATAL(hs_vs_copy(&vss.committed, &vs3) == HS_OK);
    CU_ASSERT_EQUAL_FATAL(hs_phase_collectors_update(&c, &vss), HS_OK);
    CU_ASSERT_TRUE(hs_vs_equal(&c.cvs.vs, &vs3));
    CU_ASSERT_EQUAL(c.cvs.n_entries, 0);
    CU_ASSERT_EQUAL(c.cvs.chain_id, CHAIN);
    CU_ASSERT_EQUAL(c.cvs.view, VIEW);
    CU_ASSERT_EQUAL(c.pvs.n_entries, 1); /* PVS unchanged (still vs2): kept */

    /* CVS becomes vs1 and PVS becomes vs3, the set of the *old* CVS collector. The clone rule
     * compares with the current (new) CVS collector's set, vs1, so the PVS collector is fresh
     * and the old CVS collector's votes are not carried over. */
    hs_phase_vote w = pvote(5, CHAIN, VIEW, 8, HS_PHASE_GENERIC);
    CU_ASSERT_FALSE(offer(&c, 5, &w, &pc)); /* a vote in the vs3 CVS collector */
    hs_vs_free(&vss.committed);
    hs_vs_free(&vss.previous);
    CU_ASSERT_FATAL(hs_vs_copy(&vss.committed, &vs1) == HS_OK);
    CU_ASSERT_FATAL(hs_vs_copy(&vss.previous, &vs3) == HS_OK);
    CU_ASSERT_EQUAL_FATAL(hs_phase_collectors_update(&c, &vss), HS_OK);
    CU_ASSERT_TRUE(hs_vs_equal(&c.cvs.vs, &vs1));
    CU_ASSERT_TRUE(hs_vs_equal(&c.pvs.vs, &vs3));
    CU_ASSERT_EQUAL(c.cvs.n_entries, 0);
    CU_ASSERT_EQUAL(c.pvs.n_entries, 0);

    /* CVS and PVS both change to the same new set at once: the clone is of the new (fresh)
     * CVS collector, so it is empty too. */
    CU_ASSERT_FALSE(offer(&c, 0, &v0, &pc));
    hs_vs_free(&vss.committed);
    hs_vs_free(&vss.previous);
    CU_ASSERT_FATAL(hs_vs_copy(&vss.committed, &vs2) == HS_OK);
    CU_ASSERT_FATAL(hs_vs_copy(&vss.previous, &vs2) == HS_OK);
    CU_ASSERT_EQUAL_FATAL(hs_phase_collectors_update(&c, &vss), HS_OK);
    CU_ASSERT_TRUE(hs_vs_equal(&c.cvs.vs, &vs2));
    CU_ASSERT_TRUE(hs_vs_equal(&c.pvs.vs, &vs2));
    CU_ASSERT_EQUAL(c.cvs.n_entries, 0);
    CU_ASSERT_EQUAL(c.pvs.n_entries, 0);

    /* Decided: PVS collector dropped. Undecided again with PVS != CVS: a fresh one. */
    vss.update_decided = true;
    CU_ASSERT_EQUAL_FATAL(hs_phase_collectors_update(&c, &vss), HS_OK);
    CU_ASSERT_FALSE(c.has_pvs);
    vss.update_decided = false;
    hs_vs_free(&vss.previous);
    CU_ASSERT_FATAL(hs_vs_copy(&vss.previous, &vs1) == HS_OK);
    CU_ASSERT_EQUAL_FATAL(hs_phase_collectors_update(&c, &vss), HS_OK);
    CU_ASSERT_TRUE(c.has_pvs);
    CU_ASSERT_TRUE(hs_vs_equal(&c.pvs.vs, &vs1));

    CU_ASSERT_EQUAL(hs_phase_collectors_update(NULL, &vss), HS_ERR_INVALID);
    CU_ASSERT_EQUAL(hs_phase_collectors_update(&c, NULL), HS_ERR_INVALID);
    hs_phase_collectors_free(&c);
    hs_phase_collectors_free(&c); /* freeing twice is harmless: free leaves it zeroed */
    hs_vss_free(&vss);
    hs_vs_free(&vs1);
    hs_vs_free(&vs2);
    hs_vs_free(&vs3);
}

/* The same rules for the timeout pair, including the clone carrying the tally. */
static void test_timeout_pair(void) {
    setup_keys();
    hs_validator_set vs1, vs2;
    mk_vs(&vs1, 4, (int[]){0, 1, 2, 3}, (uint64_t[]){1, 1, 1, 1});
    mk_vs(&vs2, 4, (int[]){0, 1, 4, 5}, (uint64_t[]){1, 1, 1, 1});
    hs_vss vss;
    mk_vss(&vss, &vs1, &vs1, true);
    hs_timeout_collectors c;
    CU_ASSERT_EQUAL_FATAL(hs_timeout_collectors_init(&c, CHAIN, VIEW, &vss), HS_OK);
    CU_ASSERT_FALSE(c.has_pvs);
    hs_tc tc;
    hs_timeout_vote t0 = tvote(0, CHAIN, VIEW), t1 = tvote(1, CHAIN, VIEW);
    CU_ASSERT_FALSE(toffer(&c, 0, &t0, &tc));
    CU_ASSERT_FALSE(toffer(&c, 1, &t1, &tc));

    /* Clone: the PVS collector starts with the same two votes. */
    vss.update_decided = false;
    CU_ASSERT_EQUAL_FATAL(hs_timeout_collectors_update(&c, &vss), HS_OK);
    CU_ASSERT_TRUE_FATAL(c.has_pvs);
    CU_ASSERT_TRUE(c.pvs.power == 2);
    CU_ASSERT_EQUAL(hs_sigset_count(&c.pvs.sigs), 2);
    CU_ASSERT_PTR_NOT_EQUAL(c.pvs.sigs.slots, c.cvs.sigs.slots);

    /* Fresh PVS collector for a different PVS; PVS-only signers then reach a PVS TC. */
    hs_vs_free(&vss.previous);
    CU_ASSERT_FATAL(hs_vs_copy(&vss.previous, &vs2) == HS_OK);
    CU_ASSERT_EQUAL_FATAL(hs_timeout_collectors_update(&c, &vss), HS_OK);
    CU_ASSERT_TRUE(c.pvs.power == 0);
    CU_ASSERT_TRUE(c.cvs.power == 2); /* CVS unchanged: kept */
    hs_timeout_vote t4 = tvote(4, CHAIN, VIEW), t5 = tvote(5, CHAIN, VIEW);
    CU_ASSERT_FALSE(toffer(&c, 4, &t4, &tc));
    CU_ASSERT_FALSE(toffer(&c, 5, &t5, &tc));
    CU_ASSERT_TRUE_FATAL(toffer(&c, 0, &t0, &tc)); /* CVS ignores the duplicate; PVS: 3 of 4 */
    CU_ASSERT_EQUAL(tc.sigs.n, vs2.n);
    CU_ASSERT_TRUE(tc_ok(&tc, &vs2));
    hs_tc_free(&tc);
    /* The CVS TC comes first when the CVS collector makes one. */
    hs_timeout_vote t2 = tvote(2, CHAIN, VIEW);
    CU_ASSERT_TRUE_FATAL(toffer(&c, 2, &t2, &tc));
    CU_ASSERT_TRUE(tc_ok(&tc, &vs1));
    hs_tc_free(&tc);

    /* CVS changes: fresh CVS collector; decided: PVS collector dropped. */
    hs_vs_free(&vss.committed);
    CU_ASSERT_FATAL(hs_vs_copy(&vss.committed, &vs2) == HS_OK);
    vss.update_decided = true;
    CU_ASSERT_EQUAL_FATAL(hs_timeout_collectors_update(&c, &vss), HS_OK);
    CU_ASSERT_FALSE(c.has_pvs);
    CU_ASSERT_TRUE(hs_vs_equal(&c.cvs.vs, &vs2));
    CU_ASSERT_TRUE(c.cvs.power == 0);
    CU_ASSERT_EQUAL_FATAL(hs_timeout_collectors_update(&c, &vss), HS_OK);
    CU_ASSERT_FALSE(c.has_pvs);

    hs_timeout_collectors_free(&c);
    hs_vss_free(&vss);
    hs_vs_free(&vs1);
    hs_vs_free(&vs2);
}

/* An empty validator set: nobody is a member, nothing is ever collected. */
static void test_empty_validator_set(void) {
    setup_keys();
    hs_validator_set empty;
    memset(&empty, 0, sizeof empty);
    hs_vss vss;
    mk_vss(&vss, &empty, &empty, false);
    hs_phase_collectors pc_c;
    hs_timeout_collectors tc_c;
    CU_ASSERT_EQUAL_FATAL(hs_phase_collectors_init(&pc_c, CHAIN, VIEW, &vss), HS_OK);
    CU_ASSERT_EQUAL_FATAL(hs_timeout_collectors_init(&tc_c, CHAIN, VIEW, &vss), HS_OK);
    hs_pc pc;
    hs_tc tc;
    hs_phase_vote v = pvote(0, CHAIN, VIEW, 1, HS_PHASE_GENERIC);
    hs_timeout_vote t = tvote(0, CHAIN, VIEW);
    CU_ASSERT_FALSE(offer(&pc_c, 0, &v, &pc));
    CU_ASSERT_FALSE(toffer(&tc_c, 0, &t, &tc));
    hs_phase_collectors_free(&pc_c);
    hs_timeout_collectors_free(&tc_c);
    hs_vss_free(&vss);
}

static const cu_test tests[] = {
    {"phase: quorum exactly at threshold, weighted", test_phase_weighted_quorum},
    {"phase: P=3 needs all three", test_phase_quorum_equal_powers},
    {"phase: duplicate signer counted once", test_phase_duplicate_signer},
    {"phase: non-member, wrong view/chain ignored", test_phase_ignored_votes},
    {"phase: (block, phase) entries are separate", test_phase_separate_entries},
    {"phase: entry removed after PC", test_phase_entry_removed_after_pc},
    {"phase: entry cap", test_phase_junk_votes_bounded},
    {"timeout: every new vote after quorum gives a larger TC", test_timeout_growing_tcs},
    {"timeout: weighted, ignored votes", test_timeout_weighted_and_ignored},
    {"pair: PVS collector while undecided, dropped when decided", test_pair_pvs_while_undecided},
    {"pair: CVS collector first", test_pair_cvs_first},
    {"pair: update rule and clone", test_pair_update_rule},
    {"pair: timeout collectors", test_timeout_pair},
    {"empty validator set", test_empty_validator_set},
    {NULL, NULL},
};

int main(void) { return cu_run("collectors", tests); }
