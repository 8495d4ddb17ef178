/* test_types.c - validator sets, quorum, leader selection, update sets, lifecycle. */
#include <stdlib.h>
#include <string.h>

#include "cu.h"
#include "hotstuff/types.h"

static hs_key key_of(uint8_t b) {
    hs_key k;
    memset(k.b, b, sizeof k.b);
    return k;
}

/* A set of n validators with keys 1..n (ascending) and the given powers. */
static void vs_make(hs_validator_set *vs, const uint64_t *powers, uint32_t n) {
    memset(vs, 0, sizeof *vs);
    for (uint32_t i = 0; i < n; i++) {
        hs_key k = key_of((uint8_t)(i + 1));
        CU_ASSERT_EQUAL_FATAL(hs_vs_put(vs, &k, powers[i]), HS_OK);
    }
}

static hs_u128 quorum_of(uint64_t power) {
    hs_validator_set vs;
    vs_make(&vs, &power, 1);
    hs_u128 q = hs_vs_quorum(&vs);
    hs_vs_free(&vs);
    return q;
}

/* spec §1.7 examples */
static void test_quorum_examples(void) {
    CU_ASSERT(quorum_of(1) == 1);
    CU_ASSERT(quorum_of(2) == 2);
    CU_ASSERT(quorum_of(3) == 3);
    CU_ASSERT(quorum_of(4) == 3);
    CU_ASSERT(quorum_of(6) == 5);
    CU_ASSERT(quorum_of(7) == 5);
    hs_validator_set empty = {0};
    CU_ASSERT(hs_vs_total_power(&empty) == 0);
    CU_ASSERT(hs_vs_quorum(&empty) == 1);
}

/* Totals beyond u64 must not wrap: 4 × (2^64 - 1). */
static void test_quorum_large_powers(void) {
    uint64_t p[4] = {UINT64_MAX, UINT64_MAX, UINT64_MAX, UINT64_MAX};
    hs_validator_set vs;
    vs_make(&vs, p, 4);
    hs_u128 total = (hs_u128)UINT64_MAX * 4;
    CU_ASSERT(hs_vs_total_power(&vs) == total);
    CU_ASSERT(hs_vs_quorum(&vs) == total * 2 / 3 + 1);
    CU_ASSERT(hs_vs_quorum(&vs) > (hs_u128)UINT64_MAX);
    hs_vs_free(&vs);

    uint64_t q[2] = {UINT64_MAX, 1}; /* total exactly 2^64 */
    vs_make(&vs, q, 2);
    CU_ASSERT(hs_vs_total_power(&vs) == (hs_u128)1 << 64);
    CU_ASSERT(hs_vs_quorum(&vs) == (((hs_u128)1 << 65) / 3) + 1);
    hs_vs_free(&vs);
}

/* The reference loop of spec §4.3, verbatim. */
static int naive_leader(const hs_validator_set *vs, uint64_t view, hs_key *out) {
    uint64_t p = (uint64_t)hs_vs_total_power(vs), pmax = 0, counter = 0;
    if (p == 0) return -1;
    for (uint32_t k = 0; k < vs->n; k++)
        if (vs->v[k].power > pmax) pmax = vs->v[k].power;
    uint64_t idx = view % p;
    for (uint64_t t = 1; t <= pmax; t++) {
        for (uint32_t k = 0; k < vs->n; k++) {
            if (vs->v[k].power >= t) {
                if (counter == idx) {
                    *out = vs->v[k].key;
                    return 0;
                }
                counter++;
            }
        }
    }
    return -1;
}

static void test_leader_example(void) {
    uint64_t p[2] = {1, 3}; /* A:1, B:3 with A < B */
    hs_validator_set vs;
    vs_make(&vs, p, 2);
    hs_key a = key_of(1), b = key_of(2), got;
    const hs_key *want[8] = {&a, &b, &b, &b, &a, &b, &b, &b};
    for (uint64_t v = 0; v < 8; v++) {
        CU_ASSERT_EQUAL_FATAL(hs_vs_leader(&vs, v, &got), HS_OK);
        CU_ASSERT(memcmp(got.b, want[v]->b, HS_KEY_LEN) == 0);
    }
    hs_vs_free(&vs);
}

static void test_leader_empty(void) {
    hs_validator_set vs = {0};
    hs_key got;
    CU_ASSERT_EQUAL(hs_vs_leader(&vs, 0, &got), HS_ERR_STATE);
    uint64_t zero[2] = {0, 0};
    vs_make(&vs, zero, 2);
    CU_ASSERT_EQUAL(hs_vs_leader(&vs, 5, &got), HS_ERR_STATE);
    hs_vs_free(&vs);
}

static uint64_t rnd_state = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void) { /* xorshift64*: reproducible across runs */
    rnd_state ^= rnd_state >> 12;
    rnd_state ^= rnd_state << 25;
    rnd_state ^= rnd_state >> 27;
    return rnd_state * 0x2545f4914f6cdd1dull;
}

/* Random sets (random keys, powers incl. 0) against the reference loop: small powers over
 * every view of two full cycles, then larger powers at random views. */
static void test_leader_fast_matches_naive(void) {
    for (int iter = 0; iter < 360; iter++) {
        bool big = iter >= 300;
        hs_validator_set vs = {0};
        uint32_t n = 1 + (uint32_t)(rnd() % (big ? 24 : 12));
        for (uint32_t i = 0; i < n; i++) {
            hs_key k;
            for (int j = 0; j < HS_KEY_LEN; j++) k.b[j] = (uint8_t)rnd();
            CU_ASSERT_EQUAL_FATAL(hs_vs_put(&vs, &k, rnd() % (big ? 1000 : 9)), HS_OK);
        }
        uint64_t total = (uint64_t)hs_vs_total_power(&vs);
        uint64_t views = big ? 40 : 2 * total + 3;
        for (uint64_t v = 0; v < views; v++) {
            hs_key fast, slow;
            uint64_t view = (big || iter % 3 == 0) ? rnd() : v;
            int rc = naive_leader(&vs, view, &slow);
            hs_status st = hs_vs_leader(&vs, view, &fast);
            CU_ASSERT_EQUAL_FATAL(st == HS_OK, rc == 0);
            if (rc == 0) CU_ASSERT_FATAL(memcmp(fast.b, slow.b, HS_KEY_LEN) == 0);
            if (total == 0) break;
        }
        hs_vs_free(&vs);
    }
}

/* hs_vs_leader_among against its definition: walk the round robin from view's slot until a
 * marked validator leads. Random sets and masks, small powers (the walk stays short). */
static void test_leader_among_matches_walk(void) {
    for (int iter = 0; iter < 300; iter++) {
        hs_validator_set vs = {0};
        uint32_t n = 1 + (uint32_t)(rnd() % 10);
        for (uint32_t i = 0; i < n; i++) {
            hs_key k;
            for (int j = 0; j < HS_KEY_LEN; j++) k.b[j] = (uint8_t)rnd();
            CU_ASSERT_EQUAL_FATAL(hs_vs_put(&vs, &k, rnd() % 6), HS_OK);
        }
        bool active[16] = {false}, any = false;
        for (uint32_t i = 0; i < vs.n; i++) {
            active[i] = rnd() % 3 != 0;
            any = any || (active[i] && vs.v[i].power > 0);
        }
        uint64_t total = (uint64_t)hs_vs_total_power(&vs);
        for (int k = 0; k < 40; k++) {
            uint64_t view = k < 20 ? (uint64_t)k : rnd();
            uint32_t pos = 0;
            hs_status st = hs_vs_leader_among(&vs, view, active, &pos);
            CU_ASSERT_EQUAL_FATAL(st == HS_OK, any);
            if (!any) break;
            int64_t want = -1;
            for (uint64_t d = 0; d < total && want < 0; d++) {
                hs_key l;
                CU_ASSERT_EQUAL_FATAL(hs_vs_leader(&vs, view + d, &l), HS_OK);
                int64_t i = hs_vs_find(&vs, &l);
                if (active[i]) want = i;
            }
            CU_ASSERT_EQUAL_FATAL((int64_t)pos, want);
        }
        hs_vs_free(&vs);
    }
}

/* Over P consecutive views each validator leads exactly `power` times (spec §4.3). */
static void test_leader_counts(void) {
    uint64_t p[5] = {5, 1, 0, 7, 3};
    hs_validator_set vs;
    vs_make(&vs, p, 5);
    uint64_t total = 16, count[5] = {0};
    for (uint64_t v = 1000; v < 1000 + total; v++) {
        hs_key got;
        CU_ASSERT_EQUAL_FATAL(hs_vs_leader(&vs, v, &got), HS_OK);
        int64_t i = hs_vs_find(&vs, &got);
        CU_ASSERT_FATAL(i >= 0);
        count[i]++;
    }
    for (int i = 0; i < 5; i++) CU_ASSERT_EQUAL(count[i], p[i]);
    hs_vs_free(&vs);

    /* Large powers: the fast path must stay fast and exact at the boundaries. */
    uint64_t big[3] = {UINT64_MAX / 4, 1, UINT64_MAX / 4};
    vs_make(&vs, big, 3);
    hs_key got, want2 = key_of(2), want1 = key_of(1), want3 = key_of(3);
    CU_ASSERT_EQUAL(hs_vs_leader(&vs, 0, &got), HS_OK);
    CU_ASSERT(memcmp(got.b, want1.b, HS_KEY_LEN) == 0);
    CU_ASSERT_EQUAL(hs_vs_leader(&vs, 1, &got), HS_OK);
    CU_ASSERT(memcmp(got.b, want2.b, HS_KEY_LEN) == 0);
    CU_ASSERT_EQUAL(hs_vs_leader(&vs, 2, &got), HS_OK);
    CU_ASSERT(memcmp(got.b, want3.b, HS_KEY_LEN) == 0);
    CU_ASSERT_EQUAL(hs_vs_leader(&vs, 3, &got), HS_OK); /* round 2: validator 2 is out */
    CU_ASSERT(memcmp(got.b, want1.b, HS_KEY_LEN) == 0);
    hs_vs_free(&vs);
}

static void test_vs_put_remove(void) {
    hs_validator_set vs = {0};
    hs_key k5 = key_of(5), k1 = key_of(1), k9 = key_of(9), k3 = key_of(3);
    CU_ASSERT_EQUAL(hs_vs_put(&vs, &k5, 50), HS_OK);
    CU_ASSERT_EQUAL(hs_vs_put(&vs, &k1, 10), HS_OK);
    CU_ASSERT_EQUAL(hs_vs_put(&vs, &k9, 90), HS_OK);
    CU_ASSERT_EQUAL(hs_vs_put(&vs, &k5, 55), HS_OK); /* update in place */
    CU_ASSERT_EQUAL(vs.n, 3);
    CU_ASSERT_EQUAL(vs.v[0].key.b[0], 1);
    CU_ASSERT_EQUAL(vs.v[1].key.b[0], 5);
    CU_ASSERT_EQUAL(vs.v[1].power, 55);
    CU_ASSERT_EQUAL(vs.v[2].key.b[0], 9);
    CU_ASSERT_EQUAL(hs_vs_find(&vs, &k9), 2);
    CU_ASSERT_EQUAL(hs_vs_find(&vs, &k3), -1);
    CU_ASSERT(!hs_vs_contains(&vs, &k3));
    hs_vs_remove(&vs, &k3); /* absent: no-op */
    CU_ASSERT_EQUAL(vs.n, 3);
    hs_vs_remove(&vs, &k1);
    CU_ASSERT_EQUAL(vs.n, 2);
    CU_ASSERT_EQUAL(vs.v[0].key.b[0], 5);
    hs_vs_remove(&vs, &k5);
    hs_vs_remove(&vs, &k9);
    CU_ASSERT_EQUAL(vs.n, 0);
    hs_vs_free(&vs);
}

/* Keys differing only in a late byte sort by memcmp, not by first byte. */
static void test_vs_memcmp_order(void) {
    hs_validator_set vs = {0};
    hs_key a = key_of(7), b = key_of(7);
    a.b[31] = 2;
    b.b[31] = 1;
    CU_ASSERT_EQUAL(hs_vs_put(&vs, &a, 1), HS_OK);
    CU_ASSERT_EQUAL(hs_vs_put(&vs, &b, 2), HS_OK);
    CU_ASSERT_EQUAL(vs.v[0].key.b[31], 1);
    CU_ASSERT_EQUAL(vs.v[1].key.b[31], 2);
    hs_vs_free(&vs);
}

/* spec §1.7: inserts first, then deletes. */
static void test_vs_apply(void) {
    uint64_t p[3] = {10, 20, 30};
    hs_validator_set vs;
    vs_make(&vs, p, 3); /* keys 1,2,3 */
    hs_vs_updates u = {0};
    hs_key k2 = key_of(2), k4 = key_of(4), k3 = key_of(3), k0 = key_of(0);
    CU_ASSERT_EQUAL(hs_vs_updates_insert(&u, &k4, 40), HS_OK);
    CU_ASSERT_EQUAL(hs_vs_updates_insert(&u, &k0, 5), HS_OK);
    CU_ASSERT_EQUAL(hs_vs_updates_insert(&u, &k3, 33), HS_OK);
    CU_ASSERT_EQUAL(hs_vs_updates_delete(&u, &k2), HS_OK);
    CU_ASSERT_EQUAL(hs_vs_apply(&vs, &u), HS_OK);
    CU_ASSERT_EQUAL(vs.n, 4);
    uint8_t want_key[4] = {0, 1, 3, 4};
    uint64_t want_pow[4] = {5, 10, 33, 40};
    for (int i = 0; i < 4; i++) {
        CU_ASSERT_EQUAL(vs.v[i].key.b[0], want_key[i]);
        CU_ASSERT_EQUAL(vs.v[i].power, want_pow[i]);
    }
    hs_vs_updates_free(&u);

    /* A hand-built update naming one key in both lists: the delete wins, since deletes run
     * after inserts. (Our setters never build this; a foreign encoder could.) */
    hs_validator ins = {k4, 99};
    hs_key del = k4;
    hs_vs_updates both = {1, &ins, 1, &del};
    CU_ASSERT_EQUAL(hs_vs_apply(&vs, &both), HS_OK);
    CU_ASSERT(!hs_vs_contains(&vs, &k4));
    CU_ASSERT_EQUAL(vs.n, 3);
    hs_vs_free(&vs);
}

/* spec §2.7: a key is never in both inserts and deletes. */
static void test_vs_updates_never_both(void) {
    hs_vs_updates u = {0};
    hs_key a = key_of(1), b = key_of(2), c = key_of(3);
    CU_ASSERT_EQUAL(hs_vs_updates_insert(&u, &c, 3), HS_OK);
    CU_ASSERT_EQUAL(hs_vs_updates_insert(&u, &a, 1), HS_OK);
    CU_ASSERT_EQUAL(hs_vs_updates_delete(&u, &b), HS_OK);
    CU_ASSERT_EQUAL(u.n_inserts, 2);
    CU_ASSERT_EQUAL(u.inserts[0].key.b[0], 1);
    CU_ASSERT_EQUAL(u.inserts[1].key.b[0], 3);
    CU_ASSERT_EQUAL(hs_vs_updates_delete(&u, &a), HS_OK); /* moves a to deletes */
    CU_ASSERT_EQUAL(u.n_inserts, 1);
    CU_ASSERT_EQUAL(u.n_deletes, 2);
    CU_ASSERT_EQUAL(u.deletes[0].b[0], 1);
    CU_ASSERT_EQUAL(u.deletes[1].b[0], 2);
    CU_ASSERT_EQUAL(hs_vs_updates_insert(&u, &b, 7), HS_OK); /* moves b back to inserts */
    CU_ASSERT_EQUAL(u.n_deletes, 1);
    CU_ASSERT_EQUAL(u.n_inserts, 2);
    CU_ASSERT_EQUAL(u.inserts[0].key.b[0], 2);
    CU_ASSERT_EQUAL(u.inserts[0].power, 7);
    CU_ASSERT_EQUAL(hs_vs_updates_insert(&u, &b, 8), HS_OK); /* overwrite */
    CU_ASSERT_EQUAL(u.n_inserts, 2);
    CU_ASSERT_EQUAL(u.inserts[0].power, 8);
    CU_ASSERT_EQUAL(hs_vs_updates_delete(&u, &a), HS_OK); /* idempotent */
    CU_ASSERT_EQUAL(u.n_deletes, 1);

    hs_vs_updates c2 = {0};
    CU_ASSERT_EQUAL(hs_vs_updates_copy(&c2, &u), HS_OK);
    CU_ASSERT_EQUAL(c2.n_inserts, 2);
    CU_ASSERT_EQUAL(c2.n_deletes, 1);
    CU_ASSERT(memcmp(c2.inserts, u.inserts, 2 * sizeof *u.inserts) == 0);
    hs_vs_updates_free(&u);
    CU_ASSERT(u.inserts == NULL && u.n_inserts == 0 && u.n_deletes == 0);
    hs_vs_updates_free(&c2);
}

static bool app_has_insert(const hs_app_updates *u, const char *k, const char *v) {
    for (uint32_t i = 0; i < u->n_inserts; i++) {
        if (hs_bytes_cmp(u->insert_keys[i].p, u->insert_keys[i].len, (const uint8_t *)k,
                         strlen(k)) == 0)
            return v == NULL || hs_bytes_cmp(u->insert_values[i].p, u->insert_values[i].len,
                                             (const uint8_t *)v, strlen(v)) == 0;
    }
    return false;
}

static void test_app_updates(void) {
    hs_app_updates u = {0};
    const uint8_t *K = (const uint8_t *)"ab", *K2 = (const uint8_t *)"a", *K3 = (const uint8_t *)"b";
    CU_ASSERT_EQUAL(hs_app_updates_insert(&u, K, 2, (const uint8_t *)"1", 1), HS_OK);
    CU_ASSERT_EQUAL(hs_app_updates_insert(&u, K3, 1, (const uint8_t *)"3", 1), HS_OK);
    CU_ASSERT_EQUAL(hs_app_updates_insert(&u, K2, 1, (const uint8_t *)"", 0), HS_OK);
    /* sorted with a proper prefix first: "a" < "ab" < "b" */
    CU_ASSERT_EQUAL(u.n_inserts, 3);
    CU_ASSERT(u.insert_keys[0].len == 1 && u.insert_keys[0].p[0] == 'a');
    CU_ASSERT(u.insert_keys[1].len == 2);
    CU_ASSERT(u.insert_keys[2].p[0] == 'b');
    CU_ASSERT_EQUAL(u.insert_values[0].len, 0);

    CU_ASSERT_EQUAL(hs_app_updates_delete(&u, K, 2), HS_OK);
    CU_ASSERT_EQUAL(u.n_inserts, 2);
    CU_ASSERT_EQUAL(u.n_deletes, 1);
    CU_ASSERT(!app_has_insert(&u, "ab", NULL));
    CU_ASSERT(app_has_insert(&u, "b", "3"));
    CU_ASSERT_EQUAL(hs_app_updates_insert(&u, K, 2, (const uint8_t *)"x", 1), HS_OK);
    CU_ASSERT_EQUAL(u.n_deletes, 0);
    CU_ASSERT(app_has_insert(&u, "ab", "x"));
    CU_ASSERT_EQUAL(hs_app_updates_insert(&u, K, 2, (const uint8_t *)"yy", 2), HS_OK);
    CU_ASSERT(app_has_insert(&u, "ab", "yy"));
    CU_ASSERT_EQUAL(u.n_inserts, 3);
    CU_ASSERT_EQUAL(hs_app_updates_delete(&u, (const uint8_t *)"z", 1), HS_OK);
    CU_ASSERT_EQUAL(hs_app_updates_delete(&u, (const uint8_t *)"c", 1), HS_OK);
    CU_ASSERT_EQUAL(u.n_deletes, 2);
    CU_ASSERT_EQUAL(u.delete_keys[0].p[0], 'c');

    hs_app_updates c = {0};
    CU_ASSERT_EQUAL(hs_app_updates_copy(&c, &u), HS_OK);
    hs_app_updates_free(&u);
    CU_ASSERT(app_has_insert(&c, "ab", "yy"));
    CU_ASSERT(app_has_insert(&c, "a", ""));
    CU_ASSERT_EQUAL(c.n_deletes, 2);
    CU_ASSERT_EQUAL(c.delete_keys[1].p[0], 'z');
    hs_app_updates_free(&c);
    CU_ASSERT_EQUAL(c.n_inserts, 0);
}

static void test_bytes(void) {
    CU_ASSERT(hs_bytes_cmp((const uint8_t *)"a", 1, (const uint8_t *)"ab", 2) < 0);
    CU_ASSERT(hs_bytes_cmp((const uint8_t *)"ab", 2, (const uint8_t *)"a", 1) > 0);
    CU_ASSERT(hs_bytes_cmp((const uint8_t *)"b", 1, (const uint8_t *)"ab", 2) > 0);
    CU_ASSERT(hs_bytes_cmp(NULL, 0, NULL, 0) == 0);
    CU_ASSERT(hs_bytes_cmp(NULL, 0, (const uint8_t *)"", 0) == 0);
    hs_bytes b = {0}, c = {0}, e = {0};
    CU_ASSERT_EQUAL(hs_bytes_set(&b, "xyz", 3), HS_OK);
    CU_ASSERT_EQUAL(hs_bytes_copy(&c, &b), HS_OK);
    CU_ASSERT(c.len == 3 && c.p != b.p && memcmp(c.p, "xyz", 3) == 0);
    CU_ASSERT_EQUAL(hs_bytes_copy(&e, &(hs_bytes){0}), HS_OK);
    CU_ASSERT_EQUAL(e.len, 0);
    hs_bytes_free(&b);
    hs_bytes_free(&c);
    hs_bytes_free(&e);
    CU_ASSERT(b.p == NULL && b.len == 0);
}

static void test_genesis_pc(void) {
    hs_pc g;
    hs_pc_genesis(&g);
    CU_ASSERT(hs_pc_is_genesis(&g));
    CU_ASSERT(hs_pc_is_block_justify(&g));
    CU_ASSERT(!hs_pc_is_nudge_justify(&g));
    hs_pc h = g;
    h.view = 1;
    CU_ASSERT(!hs_pc_is_genesis(&h));
    h = g;
    h.block.b[31] = 1;
    CU_ASSERT(!hs_pc_is_genesis(&h));
    h = g;
    h.chain_id = 3;
    CU_ASSERT(!hs_pc_is_genesis(&h));
    h = g;
    h.phase = HS_PHASE_DECIDE;
    CU_ASSERT(!hs_pc_is_genesis(&h));
    CU_ASSERT(hs_pc_is_block_justify(&h));
    CU_ASSERT_EQUAL(hs_sigset_init(&h.sigs, 1), HS_OK);
    h.phase = HS_PHASE_GENERIC;
    CU_ASSERT(!hs_pc_is_genesis(&h)); /* one empty slot is not the empty vector */
    hs_pc_free(&h);
    for (int p = HS_PHASE_PREPARE; p <= HS_PHASE_COMMIT; p++) {
        h = g;
        h.phase = (hs_phase)p;
        CU_ASSERT(hs_pc_is_nudge_justify(&h));
        CU_ASSERT(!hs_pc_is_block_justify(&h));
    }
}

static void test_pc_copy_equal(void) {
    hs_pc a = {.chain_id = 9, .view = 4, .phase = HS_PHASE_COMMIT};
    memset(a.block.b, 0xab, HS_HASH_LEN);
    CU_ASSERT_EQUAL_FATAL(hs_sigset_init(&a.sigs, 3), HS_OK);
    a.sigs.slots[1].present = true;
    memset(a.sigs.slots[1].sig.b, 0x5a, HS_SIG_LEN);
    CU_ASSERT_EQUAL(hs_sigset_count(&a.sigs), 1);

    hs_pc b;
    CU_ASSERT_EQUAL_FATAL(hs_pc_copy(&b, &a), HS_OK);
    CU_ASSERT(b.sigs.slots != a.sigs.slots);
    CU_ASSERT(hs_pc_equal(&a, &b));
    b.sigs.slots[0].sig.b[0] = 1; /* stale bytes in an empty slot do not count */
    CU_ASSERT(hs_pc_equal(&a, &b));
    b.sigs.slots[1].sig.b[63] ^= 1;
    CU_ASSERT(!hs_pc_equal(&a, &b));
    b.sigs.slots[1].sig.b[63] ^= 1;
    b.sigs.slots[2].present = true;
    CU_ASSERT(!hs_pc_equal(&a, &b));
    b.sigs.slots[2].present = false;
    b.phase = HS_PHASE_DECIDE;
    CU_ASSERT(!hs_pc_equal(&a, &b));
    hs_pc_free(&b);
    CU_ASSERT(b.sigs.slots == NULL && b.sigs.n == 0 && b.view == 0);

    hs_tc t = {.chain_id = 1, .view = 2}, t2;
    CU_ASSERT_EQUAL(hs_sigset_copy(&t.sigs, &a.sigs), HS_OK);
    CU_ASSERT_EQUAL(hs_tc_copy(&t2, &t), HS_OK);
    CU_ASSERT_EQUAL(t2.view, 2);
    CU_ASSERT_EQUAL(hs_sigset_count(&t2.sigs), 1);
    hs_tc_free(&t);
    hs_tc_free(&t2);
    hs_pc_free(&a);
}

static void test_block_copy(void) {
    hs_block b = {.height = 3};
    hs_pc_genesis(&b.justify);
    b.data.n = 2;
    b.data.items = calloc(2, sizeof(hs_bytes));
    CU_ASSERT_EQUAL(hs_bytes_set(&b.data.items[0], "hello", 5), HS_OK);
    /* items[1] left empty {0}: an empty datum */
    hs_block c;
    CU_ASSERT_EQUAL_FATAL(hs_block_copy(&c, &b), HS_OK);
    CU_ASSERT_EQUAL(c.height, 3);
    CU_ASSERT_EQUAL(c.data.n, 2);
    CU_ASSERT(c.data.items != b.data.items);
    CU_ASSERT(c.data.items[0].p != b.data.items[0].p);
    CU_ASSERT(memcmp(c.data.items[0].p, "hello", 5) == 0);
    CU_ASSERT_EQUAL(c.data.items[1].len, 0);
    CU_ASSERT(hs_pc_is_genesis(&c.justify));
    hs_block_free(&b);
    hs_block_free(&c);
    CU_ASSERT(c.data.items == NULL);
}

static void test_vs_copy_equal_vss(void) {
    uint64_t p[3] = {1, 2, 3};
    hs_validator_set a, b;
    vs_make(&a, p, 3);
    CU_ASSERT_EQUAL(hs_vs_copy(&b, &a), HS_OK);
    CU_ASSERT(hs_vs_equal(&a, &b));
    b.v[2].power = 4;
    CU_ASSERT(!hs_vs_equal(&a, &b));
    hs_key k = key_of(3);
    CU_ASSERT_EQUAL(hs_vs_put(&b, &k, 3), HS_OK);
    CU_ASSERT(hs_vs_equal(&a, &b));
    hs_vs_remove(&b, &k);
    CU_ASSERT(!hs_vs_equal(&a, &b));

    hs_vss s = {.committed = a, .previous = b, .has_update_height = true, .update_height = 7};
    hs_vss s2;
    CU_ASSERT_EQUAL(hs_vss_copy(&s2, &s), HS_OK);
    CU_ASSERT(hs_vs_equal(&s2.committed, &a));
    CU_ASSERT(hs_vs_equal(&s2.previous, &b));
    CU_ASSERT(s2.committed.v != a.v);
    CU_ASSERT(s2.has_update_height && s2.update_height == 7 && !s2.update_decided);
    hs_vss_free(&s);
    hs_vss_free(&s2);
    CU_ASSERT(s2.committed.v == NULL && s2.previous.n == 0);

    hs_validator_set e = {0}, e2;
    CU_ASSERT_EQUAL(hs_vs_copy(&e2, &e), HS_OK);
    CU_ASSERT(hs_vs_equal(&e, &e2));
}

static void test_names(void) {
    CU_ASSERT_STRING_EQUAL(hs_phase_name(HS_PHASE_GENERIC), "Generic");
    CU_ASSERT_STRING_EQUAL(hs_phase_name(HS_PHASE_PREPARE), "Prepare");
    CU_ASSERT_STRING_EQUAL(hs_phase_name(HS_PHASE_PRECOMMIT), "Precommit");
    CU_ASSERT_STRING_EQUAL(hs_phase_name(HS_PHASE_COMMIT), "Commit");
    CU_ASSERT_STRING_EQUAL(hs_phase_name(HS_PHASE_DECIDE), "Decide");
    CU_ASSERT_STRING_EQUAL(hs_phase_name((hs_phase)5), "?");
    hs_limits l = hs_limits_default();
    CU_ASSERT_EQUAL(l.max_validators, 1024);
    CU_ASSERT_EQUAL(l.max_datums, 65536);
    CU_ASSERT_EQUAL(l.max_datum_bytes, 16u << 20);
    CU_ASSERT_EQUAL(l.max_block_bytes, 64u << 20);
    CU_ASSERT_EQUAL(l.max_sync_blocks, 64);
    CU_ASSERT_STRING_EQUAL(hs_status_str(HS_OK), "OK");
    CU_ASSERT_STRING_EQUAL(hs_status_str(HS_NOT_FOUND), "NOT_FOUND");
    CU_ASSERT_STRING_EQUAL(hs_status_str(HS_ERR_CORRUPT), "ERR_CORRUPT");
    CU_ASSERT_STRING_EQUAL(hs_status_str((hs_status)42), "UNKNOWN");
}

static const cu_test tests[] = {
    {"quorum examples (spec 1.7)", test_quorum_examples},
    {"quorum with powers near u64 max", test_quorum_large_powers},
    {"leader example (spec 4.3)", test_leader_example},
    {"leader of an empty or powerless set", test_leader_empty},
    {"fast leader equals reference loop", test_leader_fast_matches_naive},
    {"each validator leads power times", test_leader_counts},
    {"leader among marked validators equals the walk", test_leader_among_matches_walk},
    {"validator set put/remove", test_vs_put_remove},
    {"validator set memcmp order", test_vs_memcmp_order},
    {"apply: inserts then deletes", test_vs_apply},
    {"vs updates never in both", test_vs_updates_never_both},
    {"app updates never in both, sorted", test_app_updates},
    {"byte strings", test_bytes},
    {"genesis PC", test_genesis_pc},
    {"PC/TC copy and equal", test_pc_copy_equal},
    {"block copy", test_block_copy},
    {"validator set copy/equal, vss", test_vs_copy_equal_vss},
    {"names and defaults", test_names},
    {NULL, NULL},
};

int main(void) {
    return cu_run("types", tests);
}
