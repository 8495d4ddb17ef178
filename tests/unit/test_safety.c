/* tests/unit/test_safety.c - certificate verification (spec §2.10) and the safety rules
 * (spec §3.3-3.4) with real Ed25519 signatures over a tree in the in-memory store. */
#include <stdlib.h>
#include <string.h>

#include "bt.h"
#include "codec.h"
#include "cu.h"
#include "hotstuff/crypto.h"
#include "hotstuff/messages.h"
#include "hotstuff/store.h"
#include "safety.h"
#include "safety_fx.h"

#define NKEYS 9
#define CHAIN 7

static hs_keypair kps[NKEYS];
static hs_validator_set vs1; /* kps[0..3], power 1 */
static hs_validator_set vs2; /* kps[4..7], power 1 */

static void keys_setup(void) {
    static bool done;
    if (done) return;
    for (int i = 0; i < NKEYS; i++) {
        uint8_t seed[32] = {0};
        seed[0] = (uint8_t)(0x40 + i);
        CU_ASSERT_FATAL(hs_keypair_from_seed(seed, &kps[i]) == HS_OK);
    }
    for (int i = 0; i < 4; i++) {
        CU_ASSERT_FATAL(hs_vs_put(&vs1, &kps[i].public_key, 1) == HS_OK);
        CU_ASSERT_FATAL(hs_vs_put(&vs2, &kps[4 + i].public_key, 1) == HS_OK);
    }
    done = true;
}

static const hs_keypair *kp_of(const hs_key *k) {
    for (int i = 0; i < NKEYS; i++)
        if (memcmp(kps[i].public_key.b, k->b, HS_KEY_LEN) == 0) return &kps[i];
    return NULL;
}

/* Signs msg into the slots of `sigs` (sized to vs) whose bit is set in `who`. */
static void sign_slots(hs_sigset *sigs, const hs_validator_set *vs, unsigned who,
                       const uint8_t *msg, size_t len) {
    CU_ASSERT_FATAL(hs_sigset_init(sigs, vs->n) == HS_OK);
    for (uint32_t i = 0; i < vs->n; i++) {
        if (!(who & (1u << i))) continue;
        sigs->slots[i].present = true;
        hs_sign(kp_of(&vs->v[i].key), msg, len, &sigs->slots[i].sig);
    }
}

#define ALL 0xFFu

static void make_pc_by(hs_pc *pc, uint64_t chain, uint64_t view, const hs_hash *block,
                       hs_phase phase, const hs_validator_set *vs, unsigned who) {
    *pc = (hs_pc){.chain_id = chain, .view = view, .block = *block, .phase = phase};
    uint8_t msg[HS_VOTE_MSG_LEN];
    hs_phase_vote_bytes(chain, view, block, phase, msg);
    sign_slots(&pc->sigs, vs, who, msg, sizeof msg);
}

static void make_pc(hs_pc *pc, uint64_t view, const hs_hash *block, hs_phase phase) {
    make_pc_by(pc, CHAIN, view, block, phase, &vs1, ALL);
}

static void make_block(hs_block *b, uint64_t height, const hs_pc *justify, uint8_t tag) {
    safety_fx_block(b, height, justify, tag);
}

/* A store with the tree A0 - A1 - A2 - A3 (PCs by VS1, views 1..4, Generic), V (VS-updating,
 * Pending(+kps[8] power 10)) and F, both children of A0. The fixture itself is shared with
 * test_safety_ext.c (safety_fx.h). */
typedef safety_fx fx;

static void fx_open(fx *x) {
    keys_setup();
    safety_fx_open(x, &(safety_fx_params){.chain_id = CHAIN, .committed = &vs1, .n_a = 4,
                                          .vsu_key = &kps[8].public_key, .vsu_power = 10,
                                          .make_pc = make_pc});
}

static void fx_close(fx *x) { safety_fx_close(x); }

static void raw_put(fx *x, const uint8_t *k, size_t klen, const void *v, size_t vlen) {
    hs_write_batch *b = hs_batch_new();
    CU_ASSERT_FATAL(b != NULL);
    CU_ASSERT_FATAL(hs_batch_put(b, k, klen, v, vlen) == HS_OK);
    CU_ASSERT_FATAL(x->kv.write(x->kv.self, b) == HS_OK);
    hs_batch_free(b);
}

static void put_pc(fx *x, uint8_t prefix, const hs_pc *pc) {
    hs_buf b;
    hs_buf_init(&b);
    hs_enc_pc(&b, pc);
    raw_put(x, &prefix, 1, b.p, b.len);
    hs_buf_free(&b);
}

static void set_status_committed(fx *x, const hs_hash *h) {
    uint8_t k[33] = {0x06}, committed = 2;
    memcpy(k + 1, h->b, 32);
    raw_put(x, k, sizeof k, &committed, 1);
}

static bool pc_ok(fx *x, const hs_pc *pc) {
    bool ok = false;
    CU_ASSERT_FATAL(hs_pc_is_correct(&x->ctx, pc, &ok) == HS_OK);
    return ok;
}

static bool safe(fx *x, const hs_pc *pc) {
    bool ok = false;
    CU_ASSERT_FATAL(hs_safe_pc(&x->ctx, pc, &ok) == HS_OK);
    return ok;
}

/* ---- spec §2.10 ---- */

static void test_is_correctly_signed(void) {
    keys_setup();
    uint8_t msg[16] = "sixteen byte msg", other[16] = "another message!";
    hs_sigset s = {0};
    /* 4 x power 1: quorum floor(8/3) + 1 = 3. */
    sign_slots(&s, &vs1, 0x7, msg, sizeof msg);
    CU_ASSERT(hs_is_correctly_signed(NULL, &s, &vs1, msg, sizeof msg));
    hs_sigset_free(&s);
    sign_slots(&s, &vs1, 0xF, msg, sizeof msg);
    CU_ASSERT(hs_is_correctly_signed(NULL, &s, &vs1, msg, sizeof msg));
    /* One bad signature among four valid: false at once (it is not merely not counted). */
    hs_sign(kp_of(&vs1.v[3].key), other, sizeof other, &s.slots[3].sig);
    CU_ASSERT(!hs_is_correctly_signed(NULL, &s, &vs1, msg, sizeof msg));
    hs_sigset_free(&s);
    sign_slots(&s, &vs1, 0x3, msg, sizeof msg); /* one short */
    CU_ASSERT(!hs_is_correctly_signed(NULL, &s, &vs1, msg, sizeof msg));
    hs_sigset_free(&s);
    /* Slot count must equal the set's size, even with a quorum of good signatures. */
    sign_slots(&s, &vs1, 0xF, msg, sizeof msg);
    s.n = 3;
    CU_ASSERT(!hs_is_correctly_signed(NULL, &s, &vs1, msg, sizeof msg));
    s.n = 4;
    hs_sigset_free(&s);
    /* Another set's signatures in the right number of slots: false. */
    sign_slots(&s, &vs2, 0xF, msg, sizeof msg);
    CU_ASSERT(!hs_is_correctly_signed(NULL, &s, &vs1, msg, sizeof msg));
    hs_sigset_free(&s);

    /* Weighted: powers 1, 2, 3, 4 by position; total 10, quorum 7. */
    hs_validator_set w = {0};
    CU_ASSERT_FATAL(hs_vs_copy(&w, &vs1) == HS_OK);
    for (uint32_t i = 0; i < 4; i++) w.v[i].power = i + 1;
    CU_ASSERT(hs_vs_quorum(&w) == 7);
    sign_slots(&s, &w, 0xC, msg, sizeof msg); /* 3 + 4 = 7: exactly quorum */
    CU_ASSERT(hs_is_correctly_signed(NULL, &s, &w, msg, sizeof msg));
    hs_sigset_free(&s);
    sign_slots(&s, &w, 0xA, msg, sizeof msg); /* 2 + 4 = 6: one short */
    CU_ASSERT(!hs_is_correctly_signed(NULL, &s, &w, msg, sizeof msg));
    hs_sigset_free(&s);
    sign_slots(&s, &w, 0xB, msg, sizeof msg); /* 1 + 2 + 4 = 7 */
    CU_ASSERT(hs_is_correctly_signed(NULL, &s, &w, msg, sizeof msg));
    hs_sigset_free(&s);
    hs_vs_free(&w);

    /* The empty set: quorum 1, never reached. */
    hs_validator_set empty = {0};
    hs_sigset none = {0};
    CU_ASSERT(!hs_is_correctly_signed(NULL, &none, &empty, msg, sizeof msg));
}

/* The signature cache answers as a fresh verification would: only successes are remembered,
 * and one bad signature still rejects a certificate whose other signatures are cached. */
static void test_sig_cache(void) {
    keys_setup();
    hs_sig_cache *cache = hs_sig_cache_new();
    CU_ASSERT_PTR_NOT_NULL_FATAL(cache);
    uint8_t msg[16] = "sixteen byte msg", other[16] = "another message!";
    hs_sig sig;
    hs_sign(kp_of(&vs1.v[0].key), msg, sizeof msg, &sig);
    CU_ASSERT(hs_sig_cache_verify(cache, &vs1.v[0].key, msg, sizeof msg, &sig));
    CU_ASSERT(hs_sig_cache_verify(cache, &vs1.v[0].key, msg, sizeof msg, &sig));
    hs_sig_cache_stats st = hs_sig_cache_get_stats(cache);
    CU_ASSERT_EQUAL(st.misses, 1);
    CU_ASSERT_EQUAL(st.hits, 1);
    /* The same signature over another message, or under another key: verified, and false. */
    CU_ASSERT(!hs_sig_cache_verify(cache, &vs1.v[0].key, other, sizeof other, &sig));
    CU_ASSERT(!hs_sig_cache_verify(cache, &vs1.v[1].key, msg, sizeof msg, &sig));
    CU_ASSERT(!hs_sig_cache_verify(cache, &vs1.v[0].key, msg, sizeof msg - 1, &sig));
    /* A failure is not remembered: asked again, it is verified again. */
    CU_ASSERT(!hs_sig_cache_verify(cache, &vs1.v[0].key, other, sizeof other, &sig));
    st = hs_sig_cache_get_stats(cache);
    CU_ASSERT_EQUAL(st.rejected, 4);
    CU_ASSERT_EQUAL(st.hits, 1);

    /* A quorum certificate, verified once, then checked again from the cache. */
    hs_sigset s = {0};
    sign_slots(&s, &vs1, 0xF, msg, sizeof msg);
    CU_ASSERT(hs_is_correctly_signed(cache, &s, &vs1, msg, sizeof msg));
    uint64_t hits = hs_sig_cache_get_stats(cache).hits;
    CU_ASSERT(hs_is_correctly_signed(cache, &s, &vs1, msg, sizeof msg));
    CU_ASSERT_EQUAL(hs_sig_cache_get_stats(cache).hits, hits + 4);
    /* One slot replaced by a bad signature: false, though the other three are cached. */
    hs_sign(kp_of(&vs1.v[3].key), other, sizeof other, &s.slots[3].sig);
    CU_ASSERT(!hs_is_correctly_signed(cache, &s, &vs1, msg, sizeof msg));
    hs_sigset_free(&s);

    /* Far more signatures than slots: evicted entries are verified again, never wrongly. */
    for (uint32_t i = 0; i < 2 * HS_SIG_CACHE_SLOTS; i++) {
        uint8_t m[8];
        memcpy(m, &i, sizeof i);
        memcpy(m + 4, &i, sizeof i);
        hs_sig sg;
        hs_sign(kp_of(&vs1.v[i % 4].key), m, sizeof m, &sg);
        CU_ASSERT_FATAL(hs_sig_cache_verify(cache, &vs1.v[i % 4].key, m, sizeof m, &sg));
        if (i % 97 == 0) {
            sg.b[0] ^= 1;
            CU_ASSERT(!hs_sig_cache_verify(cache, &vs1.v[i % 4].key, m, sizeof m, &sg));
        }
    }
    CU_ASSERT(hs_sig_cache_verify(cache, &vs1.v[0].key, msg, sizeof msg, &sig));
    hs_sig_cache_free(cache);
    /* No cache: plain verification. */
    CU_ASSERT(hs_sig_cache_verify(NULL, &vs1.v[0].key, msg, sizeof msg, &sig));
    CU_ASSERT(!hs_sig_cache_verify(NULL, &vs1.v[0].key, other, sizeof other, &sig));
}

/* pc_is_correct picks PVS or CVS by the certified block's height h against the update height U
 * (spec §2.10). Here PVS = VS1, CVS = VS2, U = 1 (the height of V). */
static void test_pc_is_correct_by_height(void) {
    fx x;
    fx_open(&x);
    x.vss = (hs_vss){.committed = vs2, .previous = vs1, .has_update_height = true,
                     .update_height = 1, .update_decided = false};
    hs_pc pc;
    hs_pc g = {0};
    hs_pc_genesis(&g);
    CU_ASSERT(pc_ok(&x, &g));

    /* h = 0 < U: PVS. */
    make_pc_by(&pc, CHAIN, 9, &x.a[0].hash, HS_PHASE_GENERIC, &vs1, ALL);
    CU_ASSERT(pc_ok(&x, &pc));
    hs_pc_free(&pc);
    make_pc_by(&pc, CHAIN, 9, &x.a[0].hash, HS_PHASE_GENERIC, &vs2, ALL);
    CU_ASSERT(!pc_ok(&x, &pc));
    hs_pc_free(&pc);
    /* h = 2 > U: CVS. */
    make_pc_by(&pc, CHAIN, 9, &x.a[2].hash, HS_PHASE_GENERIC, &vs2, ALL);
    CU_ASSERT(pc_ok(&x, &pc));
    hs_pc_free(&pc);
    make_pc_by(&pc, CHAIN, 9, &x.a[2].hash, HS_PHASE_GENERIC, &vs1, ALL);
    CU_ASSERT(!pc_ok(&x, &pc));
    hs_pc_free(&pc);
    /* Unknown block, or U = None: CVS. */
    hs_hash unknown;
    memset(unknown.b, 0xEE, 32);
    make_pc_by(&pc, CHAIN, 9, &unknown, HS_PHASE_PREPARE, &vs2, ALL);
    CU_ASSERT(pc_ok(&x, &pc));
    hs_pc_free(&pc);
    x.vss.has_update_height = false;
    make_pc_by(&pc, CHAIN, 9, &x.a[0].hash, HS_PHASE_GENERIC, &vs2, ALL);
    CU_ASSERT(pc_ok(&x, &pc));
    hs_pc_free(&pc);
    x.vss.has_update_height = true;

    /* h == U, V's status Pending(+kps[8] power 10). */
    hs_validator_set next = {0};
    CU_ASSERT_FATAL(hs_vs_copy(&next, &vs2) == HS_OK);
    CU_ASSERT_FATAL(hs_vs_apply(&next, &x.vsu) == HS_OK);
    int k8 = (int)hs_vs_find(&next, &kps[8].public_key);
    CU_ASSERT_FATAL(k8 >= 0);
    /* Decide: CVS with the pending update applied (quorum 10 of 14: kps[8] is needed). */
    make_pc_by(&pc, CHAIN, 9, &x.v.hash, HS_PHASE_DECIDE, &next, 1u << k8);
    CU_ASSERT(pc_ok(&x, &pc));
    hs_pc_free(&pc);
    make_pc_by(&pc, CHAIN, 9, &x.v.hash, HS_PHASE_DECIDE, &vs2, ALL);
    CU_ASSERT(!pc_ok(&x, &pc));
    hs_pc_free(&pc);
    for (hs_phase ph = HS_PHASE_PREPARE; ph <= HS_PHASE_COMMIT; ph++) { /* Pending: CVS */
        make_pc_by(&pc, CHAIN, 9, &x.v.hash, ph, &vs2, ALL);
        CU_ASSERT(pc_ok(&x, &pc));
        hs_pc_free(&pc);
        make_pc_by(&pc, CHAIN, 9, &x.v.hash, ph, &vs1, ALL);
        CU_ASSERT(!pc_ok(&x, &pc));
        hs_pc_free(&pc);
    }
    make_pc_by(&pc, CHAIN, 9, &x.v.hash, HS_PHASE_GENERIC, &vs2, ALL); /* Generic: never */
    CU_ASSERT(!pc_ok(&x, &pc));
    hs_pc_free(&pc);

    /* h == U, status None (A1 is at height 1 too): false for every phase. */
    for (hs_phase ph = HS_PHASE_GENERIC; ph <= HS_PHASE_DECIDE; ph++) {
        make_pc_by(&pc, CHAIN, 9, &x.a[1].hash, ph, &vs2, ALL);
        CU_ASSERT(!pc_ok(&x, &pc));
        hs_pc_free(&pc);
        make_pc_by(&pc, CHAIN, 9, &x.a[1].hash, ph, &vs1, ALL);
        CU_ASSERT(!pc_ok(&x, &pc));
        hs_pc_free(&pc);
    }

    /* h == U, status Committed: Decide by CVS; Prepare/Precommit/Commit by PVS. */
    set_status_committed(&x, &x.v.hash);
    make_pc_by(&pc, CHAIN, 9, &x.v.hash, HS_PHASE_DECIDE, &vs2, ALL);
    CU_ASSERT(pc_ok(&x, &pc));
    hs_pc_free(&pc);
    make_pc_by(&pc, CHAIN, 9, &x.v.hash, HS_PHASE_DECIDE, &vs1, ALL);
    CU_ASSERT(!pc_ok(&x, &pc));
    hs_pc_free(&pc);
    for (hs_phase ph = HS_PHASE_PREPARE; ph <= HS_PHASE_COMMIT; ph++) {
        make_pc_by(&pc, CHAIN, 9, &x.v.hash, ph, &vs1, ALL);
        CU_ASSERT(pc_ok(&x, &pc));
        hs_pc_free(&pc);
        make_pc_by(&pc, CHAIN, 9, &x.v.hash, ph, &vs2, ALL);
        CU_ASSERT(!pc_ok(&x, &pc));
        hs_pc_free(&pc);
    }
    make_pc_by(&pc, CHAIN, 9, &x.v.hash, HS_PHASE_GENERIC, &vs1, ALL);
    CU_ASSERT(!pc_ok(&x, &pc));
    hs_pc_free(&pc);

    /* A PC is verified over its own fields: a changed view breaks every signature. */
    make_pc_by(&pc, CHAIN, 9, &x.a[2].hash, HS_PHASE_GENERIC, &vs2, ALL);
    pc.view = 10;
    CU_ASSERT(!pc_ok(&x, &pc));
    hs_pc_free(&pc);

    hs_vs_free(&next);
    hs_pc_free(&g);
    fx_close(&x);
}

static void make_tc(hs_tc *tc, uint64_t view, const hs_validator_set *vs, unsigned who) {
    *tc = (hs_tc){.chain_id = CHAIN, .view = view};
    uint8_t msg[HS_TIMEOUT_MSG_LEN];
    hs_timeout_vote_bytes(CHAIN, view, msg);
    sign_slots(&tc->sigs, vs, who, msg, sizeof msg);
}

static void test_tc_is_correct(void) {
    fx x;
    fx_open(&x);
    x.vss = (hs_vss){.committed = vs2, .previous = vs1, .update_decided = true};
    hs_tc by1, by2, weak;
    make_tc(&by1, 8, &vs1, ALL);
    make_tc(&by2, 8, &vs2, 0x7);
    make_tc(&weak, 8, &vs2, 0x3);
    bool ok;
    /* Decided: the committed set, and (a deliberate extension, see safety.c) the previous
     * one, whose TCs stay in circulation after the update is decided. */
    CU_ASSERT(hs_tc_is_correct(&x.ctx, &by2, &ok) == HS_OK && ok);
    CU_ASSERT(hs_tc_is_correct(&x.ctx, &by1, &ok) == HS_OK && ok);
    CU_ASSERT(hs_tc_is_correct(&x.ctx, &weak, &ok) == HS_OK && !ok);
    /* Undecided: either set. */
    x.vss.update_decided = false;
    CU_ASSERT(hs_tc_is_correct(&x.ctx, &by2, &ok) == HS_OK && ok);
    CU_ASSERT(hs_tc_is_correct(&x.ctx, &by1, &ok) == HS_OK && ok);
    CU_ASSERT(hs_tc_is_correct(&x.ctx, &weak, &ok) == HS_OK && !ok);
    by1.view = 9; /* signatures cover the view */
    CU_ASSERT(hs_tc_is_correct(&x.ctx, &by1, &ok) == HS_OK && !ok);
    hs_tc_free(&by1);
    hs_tc_free(&by2);
    hs_tc_free(&weak);
    fx_close(&x);
}

static void test_block_is_correct(void) {
    fx x;
    fx_open(&x);
    bool ok;
    CU_ASSERT(hs_block_is_correct(&x.ctx, &x.a[2], &ok) == HS_OK && ok);
    hs_block b = {0};
    CU_ASSERT_FATAL(hs_block_copy(&b, &x.a[2]) == HS_OK);
    b.height = 7; /* the hash no longer matches */
    CU_ASSERT(hs_block_is_correct(&x.ctx, &b, &ok) == HS_OK && !ok);
    hs_block_free(&b);
    /* A correct hash over a justify with a bad signature. */
    hs_pc bad;
    make_pc(&bad, 3, &x.a[1].hash, HS_PHASE_GENERIC);
    bad.sigs.slots[0].sig.b[0] ^= 1;
    make_block(&b, 2, &bad, 9);
    CU_ASSERT(hs_block_is_correct(&x.ctx, &b, &ok) == HS_OK && !ok);
    hs_block_free(&b);
    hs_pc_free(&bad);
    fx_close(&x);
}

/* ---- spec §3.3 ---- */

static void test_extends_locked_depths(void) {
    fx x;
    fx_open(&x);
    hs_pc lock;
    make_pc(&lock, 1, &x.a[0].hash, HS_PHASE_GENERIC);
    put_pc(&x, 0x07, &lock);
    bool ok;
    for (int i = 0; i < 4; i++) { /* A0 itself, child, grandchild: yes; great-grandchild: no */
        CU_ASSERT(hs_extends_locked(&x.ctx, &x.pc[i], &ok) == HS_OK);
        CU_ASSERT(ok == (i < 3));
    }
    hs_pc pf;
    make_pc(&pf, 9, &x.f.hash, HS_PHASE_GENERIC);
    CU_ASSERT(hs_extends_locked(&x.ctx, &pf, &ok) == HS_OK && ok); /* F is a child of A0 */
    hs_pc_free(&lock);
    make_pc(&lock, 2, &x.a[1].hash, HS_PHASE_GENERIC);
    put_pc(&x, 0x07, &lock);
    CU_ASSERT(hs_extends_locked(&x.ctx, &pf, &ok) == HS_OK && !ok); /* F forks below A1 */
    CU_ASSERT(hs_extends_locked(&x.ctx, &x.pc[0], &ok) == HS_OK && !ok); /* ancestor */
    /* Unknown block: no parent, no match. */
    hs_hash unknown;
    memset(unknown.b, 0xEE, 32);
    hs_pc pu;
    make_pc(&pu, 9, &unknown, HS_PHASE_GENERIC);
    CU_ASSERT(hs_extends_locked(&x.ctx, &pu, &ok) == HS_OK && !ok);
    hs_pc_free(&pu);
    hs_pc_free(&pf);
    hs_pc_free(&lock);
    fx_close(&x);
}

static void test_safe_pc(void) {
    fx x;
    fx_open(&x);
    hs_pc pc, g = {0};
    hs_pc_genesis(&g);
    /* Genesis passes (lock is genesis, chain id 0 != 7 is allowed for it). */
    CU_ASSERT(safe(&x, &g));
    CU_ASSERT(safe(&x, &x.pc[2]));

    /* 1. chain id */
    make_pc_by(&pc, CHAIN + 1, 9, &x.a[2].hash, HS_PHASE_GENERIC, &vs1, ALL);
    CU_ASSERT(!safe(&x, &pc));
    hs_pc_free(&pc);
    /* 2. unknown block */
    hs_hash unknown;
    memset(unknown.b, 0xEE, 32);
    make_pc(&pc, 9, &unknown, HS_PHASE_GENERIC);
    CU_ASSERT(!safe(&x, &pc));
    hs_pc_free(&pc);

    /* 3. lock on A1 at view 5: F (a fork off A0) is safe only with a higher view; A3
     *    (grandchild) extends it at any view. */
    hs_pc lock;
    make_pc(&lock, 5, &x.a[1].hash, HS_PHASE_GENERIC);
    put_pc(&x, 0x07, &lock);
    make_pc(&pc, 5, &x.f.hash, HS_PHASE_GENERIC);
    CU_ASSERT(!safe(&x, &pc));
    hs_pc_free(&pc);
    make_pc(&pc, 6, &x.f.hash, HS_PHASE_GENERIC);
    CU_ASSERT(safe(&x, &pc));
    hs_pc_free(&pc);
    make_pc(&pc, 4, &x.a[3].hash, HS_PHASE_GENERIC);
    CU_ASSERT(safe(&x, &pc));
    hs_pc_free(&pc);
    CU_ASSERT(!safe(&x, &g)); /* genesis no longer extends the lock nor has a higher view */

    /* 4. phases vs VS status (view 9 > the lock's): V is Pending, A2 has none. */
    for (hs_phase ph = HS_PHASE_GENERIC; ph <= HS_PHASE_DECIDE; ph++) {
        make_pc(&pc, 9, &x.v.hash, ph);
        CU_ASSERT(safe(&x, &pc) == (ph != HS_PHASE_GENERIC));
        hs_pc_free(&pc);
        make_pc(&pc, 9, &x.a[2].hash, ph);
        CU_ASSERT(safe(&x, &pc) == (ph == HS_PHASE_GENERIC));
        hs_pc_free(&pc);
    }
    set_status_committed(&x, &x.v.hash);
    for (hs_phase ph = HS_PHASE_GENERIC; ph <= HS_PHASE_DECIDE; ph++) {
        make_pc(&pc, 9, &x.v.hash, ph);
        CU_ASSERT(safe(&x, &pc) == (ph != HS_PHASE_GENERIC));
        hs_pc_free(&pc);
    }
    hs_pc_free(&lock);
    hs_pc_free(&g);
    fx_close(&x);
}

static void test_safe_block(void) {
    fx x;
    fx_open(&x);
    bool ok;
    CU_ASSERT(hs_safe_block(&x.ctx, &x.a[3], &ok) == HS_OK && ok);
    /* A block justified by a nudge-phase PC is never safe, even on a VS-updating block. */
    hs_pc pc;
    hs_block b;
    make_pc(&pc, 9, &x.v.hash, HS_PHASE_PREPARE);
    make_block(&b, 2, &pc, 1);
    CU_ASSERT(hs_safe_block(&x.ctx, &b, &ok) == HS_OK && !ok);
    hs_block_free(&b);
    hs_pc_free(&pc);
    make_pc(&pc, 9, &x.v.hash, HS_PHASE_DECIDE);
    make_block(&b, 2, &pc, 1);
    CU_ASSERT(hs_safe_block(&x.ctx, &b, &ok) == HS_OK && ok);
    hs_block_free(&b);
    hs_pc_free(&pc);
    fx_close(&x);
}

static bool nudge_safe(fx *x, uint64_t chain, uint64_t jview, hs_phase ph, uint64_t cur) {
    hs_nudge n = {.chain_id = chain, .view = cur};
    make_pc(&n.justify, jview, &x->v.hash, ph);
    bool ok = true;
    CU_ASSERT_FATAL(hs_safe_nudge(&x->ctx, &n, cur, &ok) == HS_OK);
    hs_pc_free(&n.justify);
    return ok;
}

static void test_safe_nudge(void) {
    fx x;
    fx_open(&x);
    /* Prepare / Precommit justify: only from the immediately preceding view. */
    CU_ASSERT(nudge_safe(&x, CHAIN, 9, HS_PHASE_PREPARE, 10));
    CU_ASSERT(nudge_safe(&x, CHAIN, 9, HS_PHASE_PRECOMMIT, 10));
    CU_ASSERT(!nudge_safe(&x, CHAIN, 8, HS_PHASE_PREPARE, 10));
    CU_ASSERT(!nudge_safe(&x, CHAIN, 8, HS_PHASE_PRECOMMIT, 10));
    CU_ASSERT(!nudge_safe(&x, CHAIN, 10, HS_PHASE_PREPARE, 10));
    /* Commit justify: no consecutive-views check. */
    CU_ASSERT(nudge_safe(&x, CHAIN, 3, HS_PHASE_COMMIT, 10));
    /* Block-justify phases never make a nudge. */
    CU_ASSERT(!nudge_safe(&x, CHAIN, 9, HS_PHASE_DECIDE, 10));
    CU_ASSERT(!nudge_safe(&x, CHAIN, 9, HS_PHASE_GENERIC, 10));
    /* The nudge's own chain id. */
    CU_ASSERT(!nudge_safe(&x, CHAIN + 1, 9, HS_PHASE_PREPARE, 10));
    /* cur_view 0: no preceding view (no wrap to UINT64_MAX, spec §14.11). */
    CU_ASSERT(!nudge_safe(&x, CHAIN, UINT64_MAX, HS_PHASE_PREPARE, 0));
    CU_ASSERT(nudge_safe(&x, CHAIN, UINT64_MAX, HS_PHASE_COMMIT, 0));
    /* safe_pc still applies: a nudge for a block without VS updates is unsafe. */
    hs_nudge n = {.chain_id = CHAIN, .view = 10};
    make_pc(&n.justify, 9, &x.a[2].hash, HS_PHASE_PREPARE);
    bool ok = true;
    CU_ASSERT(hs_safe_nudge(&x.ctx, &n, 10, &ok) == HS_OK && !ok);
    hs_pc_free(&n.justify);
    fx_close(&x);
}

/* ---- spec §3.4 ---- */

static void test_repropose_block(void) {
    fx x;
    fx_open(&x);
    bool has;
    hs_hash out;
    hs_pc pc;
    /* Genesis highest PC: nothing. */
    CU_ASSERT(hs_repropose_block(&x.r, 1, &has, &out) == HS_OK && !has);
    for (hs_phase ph = HS_PHASE_GENERIC; ph <= HS_PHASE_DECIDE; ph++) {
        make_pc(&pc, 5, &x.v.hash, ph);
        put_pc(&x, 0x09, &pc);
        bool phased = ph == HS_PHASE_PREPARE || ph == HS_PHASE_PRECOMMIT;
        CU_ASSERT(hs_repropose_block(&x.r, 6, &has, &out) == HS_OK && !has);
        CU_ASSERT(hs_repropose_block(&x.r, 7, &has, &out) == HS_OK && has == phased);
        if (phased) CU_ASSERT(memcmp(&out, &x.v.hash, 32) == 0);
        hs_pc_free(&pc);
    }
    make_pc(&pc, UINT64_MAX, &x.v.hash, HS_PHASE_PREPARE);
    put_pc(&x, 0x09, &pc);
    CU_ASSERT(hs_repropose_block(&x.r, 0, &has, &out) == HS_OK && has); /* no wrap */
    hs_pc_free(&pc);
    fx_close(&x);
}

static void test_block_to_commit(void) {
    fx x;
    fx_open(&x);
    bool has;
    hs_hash out;
    /* A0..A3 at views 1..4: PC(A2) (view 3) over PC(A1) (2) over PC(A0) (1) commits A0. */
    CU_ASSERT(hs_block_to_commit(&x.r, &x.pc[2], &has, &out) == HS_OK && has);
    CU_ASSERT(memcmp(&out, &x.a[0].hash, 32) == 0);
    CU_ASSERT(hs_block_to_commit(&x.r, &x.pc[3], &has, &out) == HS_OK && has);
    CU_ASSERT(memcmp(&out, &x.a[1].hash, 32) == 0);
    /* Too short a chain. */
    CU_ASSERT(hs_block_to_commit(&x.r, &x.pc[1], &has, &out) == HS_OK && !has);
    CU_ASSERT(hs_block_to_commit(&x.r, &x.pc[0], &has, &out) == HS_OK && !has);
    /* A gap in the views. */
    hs_pc pc;
    make_pc(&pc, 5, &x.a[2].hash, HS_PHASE_GENERIC);
    CU_ASSERT(hs_block_to_commit(&x.r, &pc, &has, &out) == HS_OK && !has); /* views 5, 2, 1 */
    hs_pc_free(&pc);
    /* Prepare / Precommit never; Commit / Decide commit their own block. */
    for (hs_phase ph = HS_PHASE_PREPARE; ph <= HS_PHASE_DECIDE; ph++) {
        make_pc(&pc, 9, &x.v.hash, ph);
        CU_ASSERT(hs_block_to_commit(&x.r, &pc, &has, &out) == HS_OK);
        CU_ASSERT(has == (ph >= HS_PHASE_COMMIT));
        hs_pc_free(&pc);
    }
    /* Once A1 (height 1) is committed, blocks at height <= 1 no longer commit. */
    hs_bt_update_result res = {0};
    CU_ASSERT_FATAL(hs_bt_update(&x.kv, &x.pc[3], &res) == HS_OK && res.n_committed == 2);
    hs_bt_update_result_free(&res);
    make_pc(&pc, 9, &x.a[1].hash, HS_PHASE_COMMIT);
    CU_ASSERT(hs_block_to_commit(&x.r, &pc, &has, &out) == HS_OK && !has);
    hs_pc_free(&pc);
    CU_ASSERT(hs_block_to_commit(&x.r, &x.pc[3], &has, &out) == HS_OK && !has);
    make_pc(&pc, 9, &x.a[2].hash, HS_PHASE_DECIDE);
    CU_ASSERT(hs_block_to_commit(&x.r, &pc, &has, &out) == HS_OK && has);
    hs_pc_free(&pc);
    fx_close(&x);
}

static const cu_test tests[] = {
    {"is_correctly_signed", test_is_correctly_signed},
    {"signature cache: same answers, fewer verifications", test_sig_cache},
    {"pc_is_correct picks PVS/CVS by height", test_pc_is_correct_by_height},
    {"tc_is_correct", test_tc_is_correct},
    {"block_is_correct", test_block_is_correct},
    {"extends_locked depths 0/1/2, not 3", test_extends_locked_depths},
    {"safe_pc clauses", test_safe_pc},
    {"safe_block", test_safe_block},
    {"safe_nudge", test_safe_nudge},
    {"repropose_block", test_repropose_block},
    {"block_to_commit", test_block_to_commit},
    {NULL, NULL},
};

int main(void) {
    return cu_run("safety", tests);
}
