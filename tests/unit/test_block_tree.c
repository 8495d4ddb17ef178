/* tests/unit/test_block_tree.c - the persistent block tree (spec §6, §3.5, §5.1, §6.6) over the
 * in-memory store, with real Ed25519 certificates. Raw keys are built here by hand from the
 * schema of spec §6.1-6.2, independently of core/block_tree.c.
 *
 * Longer than 800 lines on purpose: one test per rule of spec §6 (insert, update, commit,
 * prune, sync reads, the app view) over the one hand-built schema above. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bt.h"
#include "codec.h"
#include "cu.h"
#include "hotstuff/core.h"
#include "hotstuff/crypto.h"
#include "hotstuff/messages.h"
#include "hotstuff/store.h"
#include "safety.h"

#define NKEYS 5
#define CHAIN 7

static hs_keypair kps[NKEYS];
static hs_validator_set vs0; /* kps[0..3], power 1 each */

static void keys_setup(void) {
    static bool done;
    if (done) return;
    for (int i = 0; i < NKEYS; i++) {
        uint8_t seed[32] = {0};
        seed[0] = (uint8_t)(i + 1);
        CU_ASSERT_FATAL(hs_keypair_from_seed(seed, &kps[i]) == HS_OK);
    }
    for (int i = 0; i < 4; i++) CU_ASSERT_FATAL(hs_vs_put(&vs0, &kps[i].public_key, 1) == HS_OK);
    done = true;
}

static const hs_keypair *kp_of(const hs_key *k) {
    for (int i = 0; i < NKEYS; i++)
        if (memcmp(kps[i].public_key.b, k->b, HS_KEY_LEN) == 0) return &kps[i];
    return NULL;
}

/* A PC signed by every member of vs. */
static void make_pc(hs_pc *pc, uint64_t view, const hs_hash *block, hs_phase phase) {
    *pc = (hs_pc){.chain_id = CHAIN, .view = view, .block = *block, .phase = phase};
    CU_ASSERT_FATAL(hs_sigset_init(&pc->sigs, vs0.n) == HS_OK);
    uint8_t msg[HS_VOTE_MSG_LEN];
    hs_phase_vote_bytes(CHAIN, view, block, phase, msg);
    for (uint32_t i = 0; i < vs0.n; i++) {
        pc->sigs.slots[i].present = true;
        hs_sign(kp_of(&vs0.v[i].key), msg, sizeof msg, &pc->sigs.slots[i].sig);
    }
}

/* A block with `ndatums` datums "<tag>:<i>" and data_hash filled with tag. */
static void make_block(hs_block *b, uint64_t height, const hs_pc *justify, uint8_t tag,
                       uint32_t ndatums) {
    *b = (hs_block){.height = height};
    CU_ASSERT_FATAL(hs_pc_copy(&b->justify, justify) == HS_OK);
    memset(b->data_hash.b, tag, HS_HASH_LEN);
    if (ndatums) {
        b->data.items = calloc(ndatums, sizeof *b->data.items);
        b->data.n = ndatums;
    }
    for (uint32_t i = 0; i < ndatums; i++) {
        char s[32];
        int n = snprintf(s, sizeof s, "%u:%u", tag, i);
        CU_ASSERT_FATAL(hs_bytes_set(&b->data.items[i], s, (size_t)n) == HS_OK);
    }
    CU_ASSERT_FATAL(hs_block_compute_hash(b, &b->hash) == HS_OK);
}

static void genesis_block(hs_block *b, uint8_t tag, uint32_t ndatums) {
    hs_pc g = {0};
    hs_pc_genesis(&g);
    make_block(b, 0, &g, tag, ndatums);
    hs_pc_free(&g);
}

typedef struct fx {
    hs_mem_store *ms;
    hs_kv_store kv;
    hs_kv_reader r;
} fx;

static void fx_open(fx *f, const hs_app_updates *init) {
    keys_setup();
    f->ms = hs_mem_store_new();
    CU_ASSERT_FATAL(f->ms != NULL);
    f->kv = hs_mem_store_kv(f->ms);
    f->r = hs_kv_store_reader(&f->kv);
    hs_vss vss = {.committed = vs0, .previous = vs0, .update_decided = true};
    CU_ASSERT_FATAL(hs_bt_initialize(&f->kv, init, &vss) == HS_OK);
}

static void fx_close(fx *f) {
    hs_mem_store_free(f->ms);
}

/* ---- raw key access ---- */

static size_t kfield(uint8_t *k, const hs_hash *h, uint8_t field) {
    k[0] = 0x00;
    memcpy(k + 1, h->b, 32);
    k[33] = field;
    return 34;
}

static size_t kdatum(uint8_t *k, const hs_hash *h, uint32_t i) {
    kfield(k, h, 0x04);
    for (int j = 0; j < 4; j++) k[34 + j] = (uint8_t)(i >> (8 * j));
    return 38;
}

static size_t khash(uint8_t *k, uint8_t prefix, const hs_hash *h) {
    k[0] = prefix;
    memcpy(k + 1, h->b, 32);
    return 33;
}

static size_t kheight(uint8_t *k, uint64_t height) {
    k[0] = 0x01;
    for (int j = 0; j < 8; j++) k[1 + j] = (uint8_t)(height >> (8 * j));
    return 9;
}

/* Does the store hold key? If so and want != NULL, is the value exactly want[0..wlen)? */
static bool raw_is(fx *f, const uint8_t *k, size_t klen, const void *want, size_t wlen) {
    uint8_t *v = NULL;
    size_t n = 0;
    hs_status st = f->r.get(f->r.self, k, klen, &v, &n);
    bool ok = st == HS_OK && (!want || (n == wlen && memcmp(v, want, n) == 0));
    free(v);
    return ok;
}

static bool raw_has(fx *f, const uint8_t *k, size_t klen) {
    return raw_is(f, k, klen, NULL, 0);
}

static bool raw_single(fx *f, uint8_t prefix) {
    return raw_has(f, &prefix, 1);
}

static void raw_put(fx *f, const uint8_t *k, size_t klen, const void *v, size_t vlen) {
    hs_write_batch *b = hs_batch_new();
    CU_ASSERT_FATAL(b != NULL);
    CU_ASSERT_FATAL(hs_batch_put(b, k, klen, v, vlen) == HS_OK);
    CU_ASSERT_FATAL(f->kv.write(f->kv.self, b) == HS_OK);
    hs_batch_free(b);
}

static bool raw_is_pc(fx *f, uint8_t prefix, const hs_pc *pc) {
    hs_buf b;
    hs_buf_init(&b);
    hs_enc_pc(&b, pc);
    bool ok = raw_is(f, &prefix, 1, b.p, b.len);
    hs_buf_free(&b);
    return ok;
}

static bool raw_is_hash(fx *f, const uint8_t *k, size_t klen, const hs_hash *h) {
    return raw_is(f, k, klen, h->b, 32);
}

/* Are all keys of block h gone (spec §6.4 step 2)? */
static bool block_gone(fx *f, const hs_hash *h, uint32_t ndatums) {
    uint8_t k[38];
    for (uint8_t field = 0; field <= 3; field++)
        if (raw_has(f, k, kfield(k, h, field))) return false;
    for (uint32_t i = 0; i < ndatums; i++)
        if (raw_has(f, k, kdatum(k, h, i))) return false;
    for (uint8_t p = 0x02; p <= 0x06; p += 2) /* children, pending app updates, VS status */
        if (raw_has(f, k, khash(k, p, h))) return false;
    return true;
}

static bool children_are(fx *f, const hs_hash *parent, const hs_hash *want, uint32_t n) {
    hs_hash *kids = NULL;
    uint32_t nk = 0;
    bool ok = hs_bt_children(&f->r, parent, &kids, &nk) == HS_OK && nk == n &&
              (n == 0 || memcmp(kids, want, n * sizeof *kids) == 0);
    free(kids);
    return ok;
}

static bool app_state_is(fx *f, const char *key, const char *want) {
    hs_bytes v = {0};
    hs_status st = hs_bt_committed_app_state(&f->r, (const uint8_t *)key, strlen(key), &v);
    bool ok = want ? st == HS_OK && v.len == strlen(want) && memcmp(v.p, want, v.len) == 0
                   : st == HS_NOT_FOUND;
    hs_bytes_free(&v);
    return ok;
}

static void au_put(hs_app_updates *u, const char *k, const char *v) {
    CU_ASSERT_FATAL(hs_app_updates_insert(u, (const uint8_t *)k, strlen(k), (const uint8_t *)v,
                                          strlen(v)) == HS_OK);
}

static void au_del(hs_app_updates *u, const char *k) {
    CU_ASSERT_FATAL(hs_app_updates_delete(u, (const uint8_t *)k, strlen(k)) == HS_OK);
}

static bool blocks_equal(const hs_block *a, const hs_block *b) {
    if (a->height != b->height || memcmp(&a->hash, &b->hash, 32) != 0 ||
        memcmp(&a->data_hash, &b->data_hash, 32) != 0 || !hs_pc_equal(&a->justify, &b->justify) ||
        a->data.n != b->data.n)
        return false;
    for (uint32_t i = 0; i < a->data.n; i++)
        if (a->data.items[i].len != b->data.items[i].len ||
            memcmp(a->data.items[i].p, b->data.items[i].p, a->data.items[i].len) != 0)
            return false;
    return true;
}

static hs_status update(fx *f, const hs_pc *pc, hs_bt_update_result *res) {
    *res = (hs_bt_update_result){0};
    return hs_bt_update(&f->kv, pc, res);
}

/* update() and discard the result. */
static void update_ok(fx *f, const hs_pc *pc) {
    hs_bt_update_result res;
    CU_ASSERT_FATAL(update(f, pc, &res) == HS_OK);
    hs_bt_update_result_free(&res);
}

/* ---- tests ---- */

static void test_initialize(void) {
    hs_app_updates init = {0};
    au_put(&init, "k0", "v0");
    fx f;
    fx_open(&f, &init);

    hs_pc g = {0};
    hs_pc_genesis(&g);
    CU_ASSERT(raw_is_pc(&f, 0x07, &g));
    CU_ASSERT(raw_is_pc(&f, 0x09, &g));
    uint8_t zero8[8] = {0}, one = 1;
    CU_ASSERT(raw_is(&f, (const uint8_t[]){0x08}, 1, zero8, 8));
    CU_ASSERT(raw_is(&f, (const uint8_t[]){0x0F}, 1, &one, 1));
    CU_ASSERT(raw_single(&f, 0x05));
    CU_ASSERT(raw_single(&f, 0x0D));
    CU_ASSERT(app_state_is(&f, "k0", "v0"));
    /* Everything else starts absent. */
    const uint8_t absent[] = {0x0A, 0x0B, 0x0C, 0x0E, 0x10};
    for (size_t i = 0; i < sizeof absent; i++) CU_ASSERT(!raw_single(&f, absent[i]));

    hs_vss vss = {0};
    CU_ASSERT(hs_bt_vss(&f.r, &vss) == HS_OK);
    CU_ASSERT(hs_vs_equal(&vss.committed, &vs0) && hs_vs_equal(&vss.previous, &vs0));
    CU_ASSERT(!vss.has_update_height && vss.update_decided);
    hs_vss_free(&vss);
    hs_hash h;
    uint64_t u;
    hs_tc tc;
    CU_ASSERT(hs_bt_highest_committed_block(&f.r, &h) == HS_NOT_FOUND);
    CU_ASSERT(hs_bt_highest_committed_height(&f.r, &u) == HS_NOT_FOUND);
    CU_ASSERT(hs_bt_newest_block(&f.r, &h) == HS_NOT_FOUND);
    CU_ASSERT(hs_bt_highest_tc(&f.r, &tc) == HS_NOT_FOUND);
    CU_ASSERT(hs_bt_highest_view_phase_voted(&f.r, &u) == HS_NOT_FOUND);
    CU_ASSERT(hs_bt_highest_view_entered(&f.r, &u) == HS_OK && u == 0);

    /* A second initialize is refused and changes nothing. */
    size_t before = hs_mem_store_count(f.ms);
    hs_vss other = {.committed = vs0, .previous = vs0, .has_update_height = true};
    CU_ASSERT(hs_bt_initialize(&f.kv, NULL, &other) == HS_ERR_STATE);
    CU_ASSERT(hs_mem_store_count(f.ms) == before);
    CU_ASSERT(!raw_single(&f, 0x0E));

    hs_pc_free(&g);
    hs_app_updates_free(&init);
    fx_close(&f);
}

static void test_initialize_update_height(void) {
    keys_setup();
    hs_mem_store *ms = hs_mem_store_new();
    hs_kv_store kv = hs_mem_store_kv(ms);
    hs_kv_reader r = hs_kv_store_reader(&kv);
    hs_vss vss = {.committed = vs0, .previous = vs0, .has_update_height = true,
                  .update_height = 9, .update_decided = false};
    CU_ASSERT(hs_bt_initialize(&kv, NULL, &vss) == HS_OK);
    uint64_t u = 0;
    bool dec = true;
    CU_ASSERT(hs_bt_vs_update_height(&r, &u) == HS_OK && u == 9);
    CU_ASSERT(hs_bt_vs_update_decided(&r, &dec) == HS_OK && !dec);
    hs_mem_store_free(ms);
}

static void test_insert_keys(void) {
    fx f;
    fx_open(&f, NULL);
    hs_block b0, b1, b2;
    genesis_block(&b0, 1, 2);
    hs_app_updates asu = {0};
    au_put(&asu, "a", "1");
    au_del(&asu, "z");
    hs_vs_updates vsu = {0};
    CU_ASSERT_FATAL(hs_vs_updates_insert(&vsu, &kps[4].public_key, 3) == HS_OK);
    CU_ASSERT_FATAL(hs_bt_insert(&f.kv, &b0, &asu, &vsu) == HS_OK);

    uint8_t k[40];
    uint8_t height0[8] = {0}, len2[4] = {2, 0, 0, 0};
    CU_ASSERT(raw_is(&f, k, kfield(k, &b0.hash, 0x00), height0, 8));
    hs_buf e;
    hs_buf_init(&e);
    hs_enc_pc(&e, &b0.justify);
    CU_ASSERT(raw_is(&f, k, kfield(k, &b0.hash, 0x01), e.p, e.len));
    CU_ASSERT(raw_is(&f, k, kfield(k, &b0.hash, 0x02), b0.data_hash.b, 32));
    CU_ASSERT(raw_is(&f, k, kfield(k, &b0.hash, 0x03), len2, 4));
    for (uint32_t i = 0; i < 2; i++) /* raw datum bytes, no length prefix */
        CU_ASSERT(raw_is(&f, k, kdatum(k, &b0.hash, i), b0.data.items[i].p,
                         b0.data.items[i].len));
    CU_ASSERT(!raw_has(&f, k, kdatum(k, &b0.hash, 2)));
    CU_ASSERT(raw_is_hash(&f, (const uint8_t[]){0x0B}, 1, &b0.hash));
    hs_buf_reset(&e);
    hs_enc_app_updates(&e, &asu);
    CU_ASSERT(raw_is(&f, k, khash(k, 0x04, &b0.hash), e.p, e.len));
    hs_buf_reset(&e);
    hs_put_u8(&e, 1); /* Pending */
    hs_enc_vs_updates(&e, &vsu);
    CU_ASSERT(raw_is(&f, k, khash(k, 0x06, &b0.hash), e.p, e.len));
    hs_hash zero = {{0}};
    CU_ASSERT(children_are(&f, &zero, &b0.hash, 1));

    /* Getters read it back, with all datums (spec §14.3). */
    hs_block got = {0};
    CU_ASSERT(hs_bt_block(&f.r, &b0.hash, &got) == HS_OK && blocks_equal(&got, &b0));
    hs_block_free(&got);
    hs_vsu_status st;
    hs_vs_updates pend = {0};
    CU_ASSERT(hs_bt_vsu_status(&f.r, &b0.hash, &st, &pend) == HS_OK && st == HS_VSU_PENDING);
    CU_ASSERT(pend.n_inserts == 1 && pend.inserts[0].power == 3);
    hs_vs_updates_free(&pend);

    /* A second genesis block: appended to [0;32]'s list; no asu/vsu keys. Some(empty) vsu
     * still writes a Pending status. */
    genesis_block(&b1, 2, 0);
    CU_ASSERT_FATAL(hs_bt_insert(&f.kv, &b1, NULL, NULL) == HS_OK);
    uint8_t len0[4] = {0};
    CU_ASSERT(raw_is(&f, k, kfield(k, &b1.hash, 0x03), len0, 4));
    CU_ASSERT(!raw_has(&f, k, khash(k, 0x04, &b1.hash)));
    CU_ASSERT(!raw_has(&f, k, khash(k, 0x06, &b1.hash)));
    CU_ASSERT(raw_is_hash(&f, (const uint8_t[]){0x0B}, 1, &b1.hash));
    hs_hash both[3] = {b0.hash, b1.hash, b0.hash};
    CU_ASSERT(children_are(&f, &zero, both, 2));
    hs_vsu_status s1;
    CU_ASSERT(hs_bt_vsu_status(&f.r, &b1.hash, &s1, NULL) == HS_OK && s1 == HS_VSU_NONE);

    hs_pc pc0;
    make_pc(&pc0, 1, &b0.hash, HS_PHASE_GENERIC);
    make_block(&b2, 1, &pc0, 3, 1);
    hs_vs_updates empty = {0};
    CU_ASSERT_FATAL(hs_bt_insert(&f.kv, &b2, NULL, &empty) == HS_OK);
    CU_ASSERT(hs_bt_vsu_status(&f.r, &b2.hash, &s1, NULL) == HS_OK && s1 == HS_VSU_PENDING);
    CU_ASSERT(children_are(&f, &b0.hash, &b2.hash, 1));

    /* Re-inserting a stored block changes nothing: no duplicate child (the reference appends
     * one, spec §14.26), and a VS status or datums already written are kept. */
    CU_ASSERT_FATAL(hs_bt_insert(&f.kv, &b0, NULL, NULL) == HS_OK);
    CU_ASSERT(children_are(&f, &zero, both, 2));
    hs_vs_updates other = {0};
    CU_ASSERT_FATAL(hs_vs_updates_insert(&other, &kps[4].public_key, 1) == HS_OK);
    CU_ASSERT_FATAL(hs_bt_insert(&f.kv, &b1, NULL, &other) == HS_OK);
    CU_ASSERT(hs_bt_vsu_status(&f.r, &b1.hash, &s1, NULL) == HS_OK && s1 == HS_VSU_NONE);
    hs_vs_updates_free(&other);
    CU_ASSERT(raw_has(&f, k, kdatum(k, &b0.hash, 1)));

    hs_buf_free(&e);
    hs_pc_free(&pc0);
    hs_app_updates_free(&asu);
    hs_vs_updates_free(&vsu);
    hs_block_free(&b0);
    hs_block_free(&b1);
    hs_block_free(&b2);
    fx_close(&f);
}

/* The pipelined scenario (spec §3.12):
 *
 *   [0;32] ─ B0 ─ B1 ─ B2 ─ B3 ─ B4        PC views: B0 1, B1 2, B2 4, B3 5, B4 6
 *          └ G  └ S1 ─ S1c
 *
 * B0..B4 and G, S1 carry app updates; S1 also a pending VS update and datums. */
typedef struct chain {
    fx f;
    hs_block b[5], g, s1, s1c;
    hs_pc pc[5], pcs1;
} chain;

static const uint64_t chain_views[5] = {1, 2, 4, 5, 6};

static void chain_insert(chain *c, const hs_block *b, const char *k1, const char *v1,
                         const char *del) {
    hs_app_updates u = {0};
    if (k1) au_put(&u, k1, v1);
    if (del) au_del(&u, del);
    CU_ASSERT_FATAL(hs_bt_insert(&c->f.kv, b, k1 || del ? &u : NULL, NULL) == HS_OK);
    hs_app_updates_free(&u);
}

static void chain_open(chain *c) {
    hs_app_updates init = {0};
    au_put(&init, "k0", "v0");
    au_put(&init, "k1", "init");
    fx_open(&c->f, &init);
    hs_app_updates_free(&init);

    genesis_block(&c->b[0], 10, 1);
    genesis_block(&c->g, 20, 1);
    for (int i = 0; i < 5; i++) {
        if (i > 0) make_block(&c->b[i], (uint64_t)i, &c->pc[i - 1], (uint8_t)(10 + i), 1);
        make_pc(&c->pc[i], chain_views[i], &c->b[i].hash, HS_PHASE_GENERIC);
    }
    make_block(&c->s1, 1, &c->pc[0], 30, 3);
    make_pc(&c->pcs1, 3, &c->s1.hash, HS_PHASE_GENERIC);
    make_block(&c->s1c, 2, &c->pcs1, 31, 2);

    hs_pc genesis = {0};
    hs_pc_genesis(&genesis);
    chain_insert(c, &c->b[0], "k1", "b0", NULL);
    update_ok(&c->f, &genesis);
    chain_insert(c, &c->g, "k9", "g", NULL);
    chain_insert(c, &c->b[1], "k2", "b1", "k0");
    update_ok(&c->f, &c->pc[0]);
    hs_vs_updates vsu = {0};
    CU_ASSERT_FATAL(hs_vs_updates_insert(&vsu, &kps[4].public_key, 1) == HS_OK);
    hs_app_updates su = {0};
    au_put(&su, "k1", "s1");
    CU_ASSERT_FATAL(hs_bt_insert(&c->f.kv, &c->s1, &su, &vsu) == HS_OK);
    chain_insert(c, &c->s1c, "k1", "s1c", NULL);
    chain_insert(c, &c->b[2], "k1", "b2", NULL);
    update_ok(&c->f, &c->pc[1]);
    chain_insert(c, &c->b[3], "k4", "b3", "k2");
    update_ok(&c->f, &c->pc[2]);
    chain_insert(c, &c->b[4], "k1", "b4", NULL);
    update_ok(&c->f, &c->pc[3]);
    hs_vs_updates_free(&vsu);
    hs_app_updates_free(&su);
    hs_pc_free(&genesis);
}

/* The update that completes the 3-chain B2 <- B3 <- B4 (views 4, 5, 6). */
static void chain_commit(chain *c, hs_bt_update_result *res) {
    CU_ASSERT_FATAL(update(&c->f, &c->pc[4], res) == HS_OK);
}

static void chain_close(chain *c) {
    for (int i = 0; i < 5; i++) {
        hs_block_free(&c->b[i]);
        hs_pc_free(&c->pc[i]);
    }
    hs_block_free(&c->g);
    hs_block_free(&c->s1);
    hs_block_free(&c->s1c);
    hs_pc_free(&c->pcs1);
    fx_close(&c->f);
}

static void test_pipelined_commit(void) {
    chain c;
    chain_open(&c);
    fx *f = &c.f;
    uint8_t k[40];

    /* Views 4, 2, 1 and 5, 4, 2 are not consecutive: nothing committed so far. */
    CU_ASSERT(!raw_single(f, 0x0A));
    for (uint64_t h = 0; h < 5; h++) CU_ASSERT(!raw_has(f, k, kheight(k, h)));
    CU_ASSERT(raw_is_pc(f, 0x09, &c.pc[3]));
    CU_ASSERT(raw_is_pc(f, 0x07, &c.pc[2])); /* lock = justify of B3 */

    hs_bt_update_result res;
    chain_commit(&c, &res);
    CU_ASSERT(res.highest_pc_updated);
    CU_ASSERT(res.locked_pc_updated && hs_pc_equal(&res.locked_pc, &c.pc[3]));
    CU_ASSERT_FATAL(res.n_committed == 3);
    for (int i = 0; i < 3; i++) { /* B2 and its ancestors, oldest first */
        CU_ASSERT(memcmp(&res.committed[i].block, &c.b[i].hash, 32) == 0);
        CU_ASSERT(!res.committed[i].has_vsu);
    }
    CU_ASSERT(!res.has_vsu);
    hs_bt_update_result_free(&res);

    CU_ASSERT(raw_is_pc(f, 0x09, &c.pc[4]));
    CU_ASSERT(raw_is_pc(f, 0x07, &c.pc[3]));
    for (uint64_t h = 0; h < 3; h++) CU_ASSERT(raw_is_hash(f, k, kheight(k, h), &c.b[h].hash));
    CU_ASSERT(!raw_has(f, k, kheight(k, 3)));
    CU_ASSERT(raw_is_hash(f, (const uint8_t[]){0x0A}, 1, &c.b[2].hash));
    uint64_t hch;
    CU_ASSERT(hs_bt_highest_committed_height(&f->r, &hch) == HS_OK && hch == 2);

    /* Pending app updates applied oldest first, then removed; later blocks keep theirs. */
    CU_ASSERT(app_state_is(f, "k0", NULL));
    CU_ASSERT(app_state_is(f, "k1", "b2"));
    CU_ASSERT(app_state_is(f, "k2", "b1"));
    CU_ASSERT(app_state_is(f, "k4", NULL));
    CU_ASSERT(app_state_is(f, "k9", NULL));
    for (int i = 0; i < 3; i++) CU_ASSERT(!raw_has(f, k, khash(k, 0x04, &c.b[i].hash)));
    for (int i = 3; i < 5; i++) CU_ASSERT(raw_has(f, k, khash(k, 0x04, &c.b[i].hash)));

    /* Siblings and their descendants pruned, every key of theirs. */
    CU_ASSERT(block_gone(f, &c.g.hash, 1));
    CU_ASSERT(block_gone(f, &c.s1.hash, 3));
    CU_ASSERT(block_gone(f, &c.s1c.hash, 2));
    hs_hash zero = {{0}};
    for (int i = 0; i < 4; i++)
        CU_ASSERT(children_are(f, i == 0 ? &zero : &c.b[i - 1].hash, &c.b[i].hash, 1));
    bool has;
    CU_ASSERT(hs_bt_contains(&f->r, &c.b[4].hash, &has) == HS_OK && has);
    CU_ASSERT(hs_bt_contains(&f->r, &c.s1.hash, &has) == HS_OK && !has);

    /* No VS update was committed: the pruned S1's pending one is simply gone. */
    hs_vss vss = {0};
    CU_ASSERT(hs_bt_vss(&f->r, &vss) == HS_OK);
    CU_ASSERT(hs_vs_equal(&vss.committed, &vs0) && vss.update_decided);
    CU_ASSERT(!vss.has_update_height);
    hs_vss_free(&vss);

    /* The same PC again changes nothing: no higher view, same lock, nothing above to commit. */
    CU_ASSERT(update(f, &c.pc[4], &res) == HS_OK);
    CU_ASSERT(!res.highest_pc_updated && !res.locked_pc_updated && res.n_committed == 0);
    hs_bt_update_result_free(&res);
    chain_close(&c);
}

static void test_pc_to_lock(void) {
    chain c;
    chain_open(&c);
    fx *f = &c.f;
    bool has;
    hs_pc out = {0};

    /* Current lock: PC(B2) (from PC(B3)). Generic PC(B4) locks B4's justify = PC(B3). */
    CU_ASSERT(hs_pc_to_lock(&f->r, &c.pc[4], &has, &out) == HS_OK && has);
    CU_ASSERT(hs_pc_equal(&out, &c.pc[3]));
    hs_pc_free(&out);
    /* Generic PC(B3): candidate PC(B2) equals the lock: no update. */
    CU_ASSERT(hs_pc_to_lock(&f->r, &c.pc[3], &has, &out) == HS_OK && !has);
    /* Genesis and Prepare: never. */
    hs_pc g = {0}, p = {0};
    hs_pc_genesis(&g);
    CU_ASSERT(hs_pc_to_lock(&f->r, &g, &has, &out) == HS_OK && !has);
    make_pc(&p, 9, &c.b[4].hash, HS_PHASE_PREPARE);
    CU_ASSERT(hs_pc_to_lock(&f->r, &p, &has, &out) == HS_OK && !has);
    hs_pc_free(&p);
    /* Precommit: the PC itself. */
    make_pc(&p, 9, &c.b[4].hash, HS_PHASE_PRECOMMIT);
    CU_ASSERT(hs_pc_to_lock(&f->r, &p, &has, &out) == HS_OK && has && hs_pc_equal(&out, &p));
    hs_pc_free(&out);
    hs_pc_free(&p);
    /* Commit / Decide: only if the locked block differs. The lock is on B2. */
    for (hs_phase ph = HS_PHASE_COMMIT; ph <= HS_PHASE_DECIDE; ph++) {
        make_pc(&p, 9, &c.b[2].hash, ph);
        CU_ASSERT(hs_pc_to_lock(&f->r, &p, &has, &out) == HS_OK && !has);
        hs_pc_free(&p);
        make_pc(&p, 9, &c.b[3].hash, ph);
        CU_ASSERT(hs_pc_to_lock(&f->r, &p, &has, &out) == HS_OK && has && hs_pc_equal(&out, &p));
        hs_pc_free(&out);
        hs_pc_free(&p);
    }
    /* A justify whose block is unknown breaks update's precondition. */
    hs_hash unknown;
    memset(unknown.b, 0xEE, 32);
    make_pc(&p, 9, &unknown, HS_PHASE_GENERIC);
    hs_bt_update_result res;
    CU_ASSERT(update(f, &p, &res) == HS_ERR_INVALID);
    CU_ASSERT(res.n_committed == 0 && !res.locked_pc_updated);
    CU_ASSERT(raw_is_pc(f, 0x09, &c.pc[3])); /* nothing written */
    hs_pc_free(&p);
    hs_pc_free(&g);
    chain_close(&c);
}

static bool view_is(const hs_app_view *v, const char *key, const char *want) {
    hs_bytes val = {0};
    hs_status st = hs_app_view_state(v, (const uint8_t *)key, strlen(key), &val);
    bool ok = want ? st == HS_OK && val.len == strlen(want) && memcmp(val.p, want, val.len) == 0
                   : st == HS_NOT_FOUND;
    hs_bytes_free(&val);
    return ok;
}

static void test_app_view(void) {
    chain c;
    chain_open(&c);
    fx *f = &c.f;
    hs_app_view *v = NULL;

    /* Before any commit: B2's view sees B2, B1, B0 (newest first) over committed state. */
    CU_ASSERT_FATAL(hs_app_view_open(&f->r, &c.b[2].hash, &v) == HS_OK);
    CU_ASSERT(view_is(v, "k1", "b2"));
    CU_ASSERT(view_is(v, "k2", "b1"));
    CU_ASSERT(view_is(v, "k0", NULL)); /* deleted by B1 */
    CU_ASSERT(view_is(v, "k9", NULL)); /* G is not an ancestor */
    hs_app_view_close(v);
    CU_ASSERT_FATAL(hs_app_view_open(&f->r, &c.b[0].hash, &v) == HS_OK);
    CU_ASSERT(view_is(v, "k0", "v0"));
    CU_ASSERT(view_is(v, "k1", "b0"));
    hs_app_view_close(v);

    hs_bt_update_result res;
    chain_commit(&c, &res);
    hs_bt_update_result_free(&res);

    /* A stale pending update left under a committed block must not be applied twice: the walk
     * stops at the committed height. */
    uint8_t k[40];
    hs_app_updates stale = {0};
    au_put(&stale, "k1", "stale");
    hs_buf e;
    hs_buf_init(&e);
    hs_enc_app_updates(&e, &stale);
    raw_put(f, k, khash(k, 0x04, &c.b[2].hash), e.p, e.len);
    raw_put(f, k, khash(k, 0x04, &c.b[1].hash), e.p, e.len);
    hs_buf_free(&e);
    hs_app_updates_free(&stale);

    CU_ASSERT_FATAL(hs_app_view_open(&f->r, &c.b[4].hash, &v) == HS_OK);
    CU_ASSERT(view_is(v, "k1", "b4"));
    CU_ASSERT(view_is(v, "k2", NULL)); /* deleted by B3, committed "b1" hidden */
    CU_ASSERT(view_is(v, "k4", "b3"));
    CU_ASSERT(view_is(v, "k0", NULL));
    CU_ASSERT(view_is(v, "nope", NULL));
    CU_ASSERT(hs_app_view_reader(v) == &f->r);
    hs_validator_set vs = {0};
    CU_ASSERT(hs_app_view_validator_set(v, &vs) == HS_OK && hs_vs_equal(&vs, &vs0));
    hs_vs_free(&vs);
    hs_app_view_close(v);

    CU_ASSERT_FATAL(hs_app_view_open(&f->r, &c.b[3].hash, &v) == HS_OK);
    CU_ASSERT(view_is(v, "k1", "b2")); /* committed: B4 is not in view, B2's stale entry ignored */
    CU_ASSERT(view_is(v, "k4", "b3"));
    hs_app_view_close(v);
    CU_ASSERT_FATAL(hs_app_view_open(&f->r, &c.b[2].hash, &v) == HS_OK);
    CU_ASSERT(view_is(v, "k1", "b2"));
    CU_ASSERT(view_is(v, "k2", "b1"));
    hs_app_view_close(v);
    CU_ASSERT_FATAL(hs_app_view_open(&f->r, &c.b[1].hash, &v) == HS_OK); /* below the HCB */
    CU_ASSERT(view_is(v, "k1", "b2"));
    hs_app_view_close(v);
    CU_ASSERT_FATAL(hs_app_view_open(&f->r, NULL, &v) == HS_OK); /* empty walk */
    CU_ASSERT(view_is(v, "k1", "b2"));
    CU_ASSERT(view_is(v, "k4", NULL));
    hs_app_view_close(v);

    hs_hash unknown;
    memset(unknown.b, 0xEE, 32);
    CU_ASSERT(hs_app_view_open(&f->r, &unknown, &v) == HS_NOT_FOUND && v == NULL);
    chain_close(&c);
}

static void check_range(fx *f, uint64_t start, uint32_t limit, const hs_block *const *want,
                        uint32_t nwant) {
    hs_block *got = NULL;
    uint32_t n = 99;
    CU_ASSERT_FATAL(hs_bt_blocks_from_height_to_newest(&f->r, start, limit, &got, &n) == HS_OK);
    CU_ASSERT(n == nwant);
    for (uint32_t i = 0; i < n && i < nwant; i++) CU_ASSERT(blocks_equal(&got[i], want[i]));
    for (uint32_t i = 0; i < n; i++) hs_block_free(&got[i]);
    free(got);
}

/* Overwrites HIGHEST_PC with pc. */
static void set_highest_pc(fx *f, const hs_pc *pc) {
    hs_buf buf;
    hs_buf_init(&buf);
    hs_enc_pc(&buf, pc);
    CU_ASSERT_FATAL(!buf.oom);
    uint8_t k = 0x09;
    raw_put(f, &k, 1, buf.p, buf.len);
    hs_buf_free(&buf);
}

static void test_blocks_from_height_to_newest(void) {
    chain c;
    chain_open(&c);
    fx *f = &c.f;
    const hs_block *b[5] = {&c.b[0], &c.b[1], &c.b[2], &c.b[3], &c.b[4]};

    /* Nothing committed: the chain certified by the highest PC (B3) down to genesis. B4, the
     * newest block but uncertified, is not served (the port walks from the highest PC's block,
     * not NEWEST_BLOCK: see block_tree.c). */
    check_range(f, 0, 10, b, 4);
    check_range(f, 0, 2, b, 2);
    /* `start` also skips speculative blocks below it. */
    check_range(f, 2, 10, b + 2, 2);

    hs_bt_update_result res;
    chain_commit(&c, &res); /* PC(B4): commits B0..B2, highest PC certifies B4 */
    hs_bt_update_result_free(&res);

    check_range(f, 0, 10, b, 5); /* committed B0..B2, then B3, B4 */
    check_range(f, 0, 4, b, 4);
    check_range(f, 1, 2, b + 1, 2);
    check_range(f, 2, 2, b + 2, 2);
    check_range(f, 3, 10, b + 3, 2); /* no committed block at 3: speculative only */
    check_range(f, 4, 10, b + 4, 1);
    check_range(f, 5, 10, b, 0);
    check_range(f, 0, 0, b, 0);

    /* The highest PC's block pruned (spec §14.25): the committed part only, no failure. */
    set_highest_pc(f, &c.pcs1); /* certifies S1, pruned by the commit of B1 */
    check_range(f, 0, 10, b, 3);
    /* The highest PC certifies a committed block (phased mode): no duplicates. */
    set_highest_pc(f, &c.pc[2]);
    check_range(f, 0, 10, b, 3);
    set_highest_pc(f, &c.pc[1]);
    check_range(f, 1, 10, b + 1, 2);
    /* The highest PC's block stored but off the committed chain (a stray root). */
    hs_block stray;
    genesis_block(&stray, 99, 0);
    CU_ASSERT_FATAL(hs_bt_insert(&f->kv, &stray, NULL, NULL) == HS_OK);
    hs_pc spc;
    make_pc(&spc, 50, &stray.hash, HS_PHASE_GENERIC);
    set_highest_pc(f, &spc);
    check_range(f, 0, 10, b, 3);
    hs_pc_free(&spc);
    hs_block_free(&stray);
    chain_close(&c);
}

/* The phased-mode chain: A0 <- B (VS-updating, adds kps[4]) with a sibling X of B. */
typedef struct phased {
    fx f;
    hs_block a0, b, x;
    hs_pc pca;
    hs_vs_updates vsu;
} phased;

static void phased_open(phased *p) {
    fx_open(&p->f, NULL);
    genesis_block(&p->a0, 1, 0);
    make_pc(&p->pca, 1, &p->a0.hash, HS_PHASE_GENERIC);
    make_block(&p->b, 1, &p->pca, 2, 1);
    make_block(&p->x, 1, &p->pca, 3, 1);
    p->vsu = (hs_vs_updates){0};
    CU_ASSERT_FATAL(hs_vs_updates_insert(&p->vsu, &kps[4].public_key, 1) == HS_OK);
    CU_ASSERT_FATAL(hs_bt_insert(&p->f.kv, &p->a0, NULL, NULL) == HS_OK);
    CU_ASSERT_FATAL(hs_bt_insert(&p->f.kv, &p->b, NULL, &p->vsu) == HS_OK);
    CU_ASSERT_FATAL(hs_bt_insert(&p->f.kv, &p->x, NULL, NULL) == HS_OK);
    update_ok(&p->f, &p->pca);
}

static void phased_close(phased *p) {
    hs_block_free(&p->a0);
    hs_block_free(&p->b);
    hs_block_free(&p->x);
    hs_pc_free(&p->pca);
    hs_vs_updates_free(&p->vsu);
    fx_close(&p->f);
}

/* The committed state after B's VS update: CVS = VS0 + kps[4], PVS = VS0, height 1. */
static void check_vs_committed(fx *f, const hs_hash *x, bool decided) {
    hs_vss vss = {0};
    CU_ASSERT_FATAL(hs_bt_vss(&f->r, &vss) == HS_OK);
    CU_ASSERT(vss.committed.n == 5 && hs_vs_contains(&vss.committed, &kps[4].public_key));
    CU_ASSERT(hs_vs_equal(&vss.previous, &vs0));
    CU_ASSERT(vss.has_update_height && vss.update_height == 1);
    CU_ASSERT(vss.update_decided == decided);
    hs_vss_free(&vss);
    uint8_t k[40], committed = 2;
    CU_ASSERT(raw_is(f, k, khash(k, 0x06, x), &committed, 1));
}

static void test_phased_commit(void) {
    phased p;
    phased_open(&p);
    fx *f = &p.f;
    hs_bt_update_result res;
    hs_pc pc;
    hs_pc g = {0};
    hs_pc_genesis(&g);

    /* Prepare: highest PC only. */
    make_pc(&pc, 2, &p.b.hash, HS_PHASE_PREPARE);
    CU_ASSERT_FATAL(update(f, &pc, &res) == HS_OK);
    CU_ASSERT(res.highest_pc_updated && !res.locked_pc_updated && res.n_committed == 0);
    CU_ASSERT(raw_is_pc(f, 0x09, &pc) && raw_is_pc(f, 0x07, &g));
    hs_bt_update_result_free(&res);
    hs_pc_free(&pc);

    /* Precommit: lock. */
    hs_pc precommit;
    make_pc(&precommit, 3, &p.b.hash, HS_PHASE_PRECOMMIT);
    CU_ASSERT_FATAL(update(f, &precommit, &res) == HS_OK);
    CU_ASSERT(res.locked_pc_updated && hs_pc_equal(&res.locked_pc, &precommit));
    CU_ASSERT(res.n_committed == 0 && raw_is_pc(f, 0x07, &precommit));
    hs_bt_update_result_free(&res);

    /* Commit: commits A0 and B; B's VS update takes effect, undecided; the lock (already on B)
     * stays. */
    make_pc(&pc, 4, &p.b.hash, HS_PHASE_COMMIT);
    CU_ASSERT_FATAL(update(f, &pc, &res) == HS_OK);
    CU_ASSERT(!res.locked_pc_updated && raw_is_pc(f, 0x07, &precommit));
    CU_ASSERT_FATAL(res.n_committed == 2);
    CU_ASSERT(memcmp(&res.committed[0].block, &p.a0.hash, 32) == 0 && !res.committed[0].has_vsu);
    CU_ASSERT(memcmp(&res.committed[1].block, &p.b.hash, 32) == 0 && res.committed[1].has_vsu);
    CU_ASSERT(res.committed[1].vsu.n_inserts == 1);
    CU_ASSERT(res.has_vsu && res.vsu.n_inserts == 1 &&
              memcmp(&res.vsu.inserts[0].key, &kps[4].public_key, 32) == 0);
    hs_bt_update_result_free(&res);
    /* The Commit PC is kept for Block Sync under the port's own key (sync_server.c). */
    hs_pc kept = {0};
    CU_ASSERT(hs_bt_vs_update_commit_pc(&f->r, &p.b.hash, &kept) == HS_OK &&
              hs_pc_equal(&kept, &pc));
    hs_pc_free(&kept);
    CU_ASSERT(hs_bt_vs_update_commit_pc(&f->r, &p.a0.hash, &kept) == HS_NOT_FOUND);
    hs_pc_free(&pc);
    check_vs_committed(f, &p.b.hash, false);
    CU_ASSERT(block_gone(f, &p.x.hash, 1));
    CU_ASSERT(raw_is_hash(f, (const uint8_t[]){0x0A}, 1, &p.b.hash));

    /* Decide: decided := true; nothing more to commit. */
    make_pc(&pc, 5, &p.b.hash, HS_PHASE_DECIDE);
    CU_ASSERT_FATAL(update(f, &pc, &res) == HS_OK);
    CU_ASSERT(res.n_committed == 0 && !res.locked_pc_updated && !res.has_vsu);
    hs_bt_update_result_free(&res);
    hs_pc_free(&pc);
    check_vs_committed(f, &p.b.hash, true);

    hs_pc_free(&precommit);
    hs_pc_free(&g);
    phased_close(&p);
}

/* A replica that never saw the Commit PC applies the Decide PC: commit writes decided = false,
 * and step 4 of the same batch overrides it with true (spec §3.5). */
static void test_decide_commits_and_decides(void) {
    phased p;
    phased_open(&p);
    hs_pc pc;
    make_pc(&pc, 5, &p.b.hash, HS_PHASE_DECIDE);
    hs_bt_update_result res;
    CU_ASSERT_FATAL(update(&p.f, &pc, &res) == HS_OK);
    CU_ASSERT(res.n_committed == 2 && res.has_vsu);
    /* Locked on genesis, a Decide PC on another block becomes the lock. */
    CU_ASSERT(res.locked_pc_updated && hs_pc_equal(&res.locked_pc, &pc));
    hs_bt_update_result_free(&res);
    check_vs_committed(&p.f, &p.b.hash, true);
    hs_pc_free(&pc);
    phased_close(&p);
}

/* A VS-updating ancestor committed by a later target: status Committed goes under the
 * ancestor itself (spec §6.4 step 4, §14.4), not under the commit target. */
static void test_vs_status_under_updating_block(void) {
    phased p;
    phased_open(&p);
    hs_pc pcb, pcc;
    hs_block cb;
    make_pc(&pcb, 2, &p.b.hash, HS_PHASE_GENERIC);
    make_block(&cb, 2, &pcb, 4, 0);
    CU_ASSERT_FATAL(hs_bt_insert(&p.f.kv, &cb, NULL, NULL) == HS_OK);
    make_pc(&pcc, 3, &cb.hash, HS_PHASE_COMMIT);
    hs_bt_update_result res;
    CU_ASSERT_FATAL(update(&p.f, &pcc, &res) == HS_OK);
    CU_ASSERT_FATAL(res.n_committed == 3);
    CU_ASSERT(!res.committed[0].has_vsu && res.committed[1].has_vsu && !res.committed[2].has_vsu);
    CU_ASSERT(res.has_vsu);
    hs_bt_update_result_free(&res);
    check_vs_committed(&p.f, &p.b.hash, false);
    uint8_t k[40];
    CU_ASSERT(!raw_has(&p.f, k, khash(k, 0x06, &cb.hash)));
    CU_ASSERT(raw_is(&p.f, k, kheight(k, 2), cb.hash.b, 32));
    hs_block_free(&cb);
    hs_pc_free(&pcb);
    hs_pc_free(&pcc);
    phased_close(&p);
}

/* A Byzantine-deep sibling branch is pruned completely, without recursion. */
static void test_prune_deep_branch(void) {
    fx f;
    fx_open(&f, NULL);
    enum { DEPTH = 3000 };
    hs_block a0, a1, s;
    genesis_block(&a0, 1, 0);
    CU_ASSERT_FATAL(hs_bt_insert(&f.kv, &a0, NULL, NULL) == HS_OK);
    hs_pc pc;
    make_pc(&pc, 1, &a0.hash, HS_PHASE_GENERIC);
    make_block(&a1, 1, &pc, 2, 0);
    CU_ASSERT_FATAL(hs_bt_insert(&f.kv, &a1, NULL, NULL) == HS_OK);
    size_t base = hs_mem_store_count(f.ms);
    hs_hash first = {{0}}, last = {{0}};
    for (int i = 0; i < DEPTH; i++) { /* S1 <- S2 <- ... all under A0 */
        make_block(&s, (uint64_t)i + 1, &pc, (uint8_t)(3 + i % 200), 1);
        CU_ASSERT_FATAL(hs_bt_insert(&f.kv, &s, NULL, NULL) == HS_OK);
        if (i == 0) first = s.hash;
        last = s.hash;
        hs_pc_free(&pc);
        make_pc(&pc, (uint64_t)i + 2, &s.hash, HS_PHASE_GENERIC);
        hs_block_free(&s);
    }
    hs_pc_free(&pc);
    make_pc(&pc, 9000, &a1.hash, HS_PHASE_COMMIT);
    update_ok(&f, &pc);
    CU_ASSERT(block_gone(&f, &first, 1));
    CU_ASSERT(block_gone(&f, &last, 1));
    /* Only the commit's new keys remain: 01||0, 01||1 and 0A (09, 07 and 0B existed). */
    CU_ASSERT(hs_mem_store_count(f.ms) == base + 3);
    CU_ASSERT(children_are(&f, &a0.hash, &a1.hash, 1));
    hs_pc_free(&pc);
    hs_block_free(&a0);
    hs_block_free(&a1);
    fx_close(&f);
}

static void test_single_key_writers(void) {
    fx f;
    fx_open(&f, NULL);
    uint64_t v;
    CU_ASSERT(hs_bt_set_highest_view_entered(&f.kv, 42) == HS_OK);
    CU_ASSERT(hs_bt_highest_view_entered(&f.r, &v) == HS_OK && v == 42);
    CU_ASSERT(hs_bt_set_highest_view_phase_voted(&f.kv, 41) == HS_OK);
    CU_ASSERT(hs_bt_highest_view_phase_voted(&f.r, &v) == HS_OK && v == 41);
    uint8_t le41[8] = {41};
    CU_ASSERT(raw_is(&f, (const uint8_t[]){0x10}, 1, le41, 8));

    hs_tc tc = {.chain_id = CHAIN, .view = 40}, got = {0};
    CU_ASSERT_FATAL(hs_sigset_init(&tc.sigs, vs0.n) == HS_OK);
    uint8_t msg[HS_TIMEOUT_MSG_LEN];
    hs_timeout_vote_bytes(CHAIN, 40, msg);
    tc.sigs.slots[1].present = true;
    hs_sign(kp_of(&vs0.v[1].key), msg, sizeof msg, &tc.sigs.slots[1].sig);
    CU_ASSERT(hs_bt_set_highest_tc(&f.kv, &tc) == HS_OK);
    CU_ASSERT(hs_bt_highest_tc(&f.r, &got) == HS_OK);
    CU_ASSERT(got.view == 40 && got.sigs.n == 4 && got.sigs.slots[1].present &&
              memcmp(&got.sigs.slots[1].sig, &tc.sigs.slots[1].sig, 64) == 0);
    hs_tc_free(&got);
    hs_tc_free(&tc);
    fx_close(&f);
}

/* Damaged values are HS_ERR_CORRUPT (with a log line), never a crash. */
static void test_corrupt_values(void) {
    fx f;
    fx_open(&f, NULL);
    hs_block b;
    genesis_block(&b, 1, 2);
    CU_ASSERT_FATAL(hs_bt_insert(&f.kv, &b, NULL, NULL) == HS_OK);
    uint8_t k[40], junk[3] = {9, 9, 9};
    uint64_t u;
    bool dec;
    hs_pc pc = {0};

    raw_put(&f, (const uint8_t[]){0x09}, 1, junk, 3);
    CU_ASSERT(hs_bt_highest_pc(&f.r, &pc) == HS_ERR_CORRUPT);
    raw_put(&f, (const uint8_t[]){0x0F}, 1, junk, 1);
    CU_ASSERT(hs_bt_vs_update_decided(&f.r, &dec) == HS_ERR_CORRUPT);
    raw_put(&f, (const uint8_t[]){0x05}, 1, junk, 3);
    hs_vss vss = {0};
    CU_ASSERT(hs_bt_vss(&f.r, &vss) == HS_ERR_CORRUPT);
    raw_put(&f, k, khash(k, 0x06, &b.hash), junk, 1);
    hs_vsu_status st;
    CU_ASSERT(hs_bt_vsu_status(&f.r, &b.hash, &st, NULL) == HS_ERR_CORRUPT);
    raw_put(&f, k, khash(k, 0x04, &b.hash), junk, 3);
    hs_app_updates au = {0};
    CU_ASSERT(hs_bt_pending_app_updates(&f.r, &b.hash, &au) == HS_ERR_CORRUPT);
    raw_put(&f, k, khash(k, 0x02, &(hs_hash){{0}}), junk, 3);
    hs_hash *kids = NULL;
    uint32_t nk;
    CU_ASSERT(hs_bt_children(&f.r, &(hs_hash){{0}}, &kids, &nk) == HS_ERR_CORRUPT);
    CU_ASSERT(kids == NULL);

    /* A datum missing below data_len: the block is damaged. */
    hs_write_batch *wb = hs_batch_new();
    CU_ASSERT_FATAL(hs_batch_delete(wb, k, kdatum(k, &b.hash, 1)) == HS_OK);
    CU_ASSERT_FATAL(f.kv.write(f.kv.self, wb) == HS_OK);
    hs_batch_free(wb);
    hs_block got = {0};
    CU_ASSERT(hs_bt_block(&f.r, &b.hash, &got) == HS_ERR_CORRUPT);
    raw_put(&f, k, kfield(k, &b.hash, 0x00), junk, 3);
    CU_ASSERT(hs_bt_block_height(&f.r, &b.hash, &u) == HS_ERR_CORRUPT);
    hs_block_free(&b);
    fx_close(&f);
}

/* A failed write leaves the store unchanged and the result empty (no leak on that path). */
static void test_write_failure(void) {
    chain c;
    chain_open(&c);
    fx *f = &c.f;
    size_t before = hs_mem_store_count(f->ms);
    hs_mem_store_fail_writes(f->ms, true);
    hs_bt_update_result res;
    CU_ASSERT(update(f, &c.pc[4], &res) == HS_ERR_IO);
    CU_ASSERT(res.n_committed == 0 && res.committed == NULL && !res.locked_pc_updated);
    CU_ASSERT(!res.highest_pc_updated && !res.has_vsu);
    hs_block b;
    make_block(&b, 5, &c.pc[4], 77, 2);
    CU_ASSERT(hs_bt_insert(&f->kv, &b, NULL, NULL) == HS_ERR_IO);
    CU_ASSERT(hs_bt_set_highest_view_entered(&f->kv, 9) == HS_ERR_IO);
    CU_ASSERT(hs_mem_store_count(f->ms) == before);
    hs_mem_store_fail_writes(f->ms, false);
    chain_commit(&c, &res);
    CU_ASSERT(res.n_committed == 3);
    hs_bt_update_result_free(&res);
    hs_block_free(&b);
    chain_close(&c);
}

/* A fake network for the sync server: keeps the last message sent. */
static hs_msg sent_msg;
static int sent_count;
static void cap_send(void *self, const hs_key *to, const hs_msg *m) {
    (void)self;
    (void)to;
    hs_msg_free(&sent_msg);
    CU_ASSERT_FATAL(hs_msg_copy(&sent_msg, m) == HS_OK);
    sent_count++;
}
static void cap_broadcast(void *self, const hs_msg *m) { cap_send(self, NULL, m); }

/* A sync response that crosses a committed VS update stops at the updating block and carries
 * its Commit PC, so that a peer still on the old set can commit it before it meets the next
 * block's Decide PC (sync_server.c stop_at_vs_update). */
static void test_sync_response_stops_at_vs_update(void) {
    phased p;
    phased_open(&p);
    fx *f = &p.f;
    hs_bt_update_result res;
    hs_pc prepare, precommit, commitpc, decide, pcc;
    make_pc(&prepare, 2, &p.b.hash, HS_PHASE_PREPARE);
    make_pc(&precommit, 3, &p.b.hash, HS_PHASE_PRECOMMIT);
    make_pc(&commitpc, 4, &p.b.hash, HS_PHASE_COMMIT);
    make_pc(&decide, 5, &p.b.hash, HS_PHASE_DECIDE);
    const hs_pc *seq[] = {&prepare, &precommit, &commitpc, &decide};
    for (int i = 0; i < 4; i++) {
        CU_ASSERT_FATAL(update(f, seq[i], &res) == HS_OK);
        hs_bt_update_result_free(&res);
    }
    hs_block c;
    make_block(&c, 2, &decide, 40, 1); /* B's child, justified by the Decide PC */
    CU_ASSERT_FATAL(hs_bt_insert(&f->kv, &c, NULL, NULL) == HS_OK);
    make_pc(&pcc, 6, &c.hash, HS_PHASE_GENERIC);
    CU_ASSERT_FATAL(update(f, &pcc, &res) == HS_OK); /* highest PC: PC(C) */
    hs_bt_update_result_free(&res);

    hs_config cfg = hs_config_test_values(&kps[0]);
    hs_core_env env = {.kv = f->kv, .net = {.send = cap_send, .broadcast = cap_broadcast}};
    hs_sync_server *srv = NULL;
    CU_ASSERT_FATAL(hs_sync_server_new(&cfg, &env, 0, &srv) == HS_OK);
    hs_sync_request req = {.chain_id = cfg.chain_id, .start_height = 0, .limit = 10};
    CU_ASSERT_FATAL(hs_sync_server_handle(srv, 0, &kps[1].public_key, &req) == HS_OK);
    CU_ASSERT_FATAL(sent_count == 1 && sent_msg.type == HS_MSG_SYNC_RESPONSE);
    const hs_sync_response *r = &sent_msg.u.sync_response;
    CU_ASSERT(r->n_blocks == 2); /* A0, B - not C */
    if (r->n_blocks == 2) CU_ASSERT(memcmp(r->blocks[1].hash.b, p.b.hash.b, 32) == 0);
    CU_ASSERT(hs_pc_equal(&r->highest_pc, &commitpc));

    /* From above B: C, with the server's highest PC as usual. */
    req.start_height = 2;
    CU_ASSERT_FATAL(hs_sync_server_handle(srv, 0, &kps[1].public_key, &req) == HS_OK);
    CU_ASSERT(r->n_blocks == 1 && memcmp(r->blocks[0].hash.b, c.hash.b, 32) == 0);
    CU_ASSERT(hs_pc_equal(&r->highest_pc, &pcc));

    hs_msg_free(&sent_msg);
    sent_count = 0;
    hs_sync_server_free(srv);
    hs_block_free(&c);
    hs_pc_free(&prepare);
    hs_pc_free(&precommit);
    hs_pc_free(&commitpc);
    hs_pc_free(&decide);
    hs_pc_free(&pcc);
    phased_close(&p);
}

static const cu_test tests[] = {
    {"sync response stops at a committed VS update with its Commit PC",
     test_sync_response_stops_at_vs_update},
    {"initialize writes spec §6.5 keys, refuses a second time", test_initialize},
    {"initialize stores Some update height", test_initialize_update_height},
    {"insert writes every key of spec §6.3", test_insert_keys},
    {"pipelined 3-chain commits oldest first and prunes", test_pipelined_commit},
    {"pc_to_lock cases", test_pc_to_lock},
    {"app view shadows committed state", test_app_view},
    {"blocks_from_height_to_newest", test_blocks_from_height_to_newest},
    {"phased mode Prepare/Precommit/Commit/Decide", test_phased_commit},
    {"Decide commits and decides in one batch", test_decide_commits_and_decides},
    {"VS status Committed under the updating block", test_vs_status_under_updating_block},
    {"deep sibling branch pruned without recursion", test_prune_deep_branch},
    {"single-key writers", test_single_key_writers},
    {"corrupt values", test_corrupt_values},
    {"write failure", test_write_failure},
    {NULL, NULL},
};

int main(void) {
    return cu_run("block_tree", tests);
}
