/* test_codec.c - Borsh vectors of spec §2, message round trips, hostile input.
 *
 * Longer than 800 lines on purpose: the vectors of spec §2, one test per type, are read side
 * by side with the spec; each test is short and independent. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "cu.h"
#include "samples.h"
#include "hotstuff/crypto.h"
#include "hotstuff/messages.h"

/* Under ASan, any single allocation above 64 MiB aborts the test: a decoder that trusted a
 * forged count would be caught here instead of quietly reserving gigabytes. */
const char *__asan_default_options(void);
const char *__asan_default_options(void) {
    return "max_allocation_size_mb=64:allocator_may_return_null=0";
}

static void hex(const char *s, uint8_t *out, size_t n) {
    for (size_t i = 0; i < n; i++) sscanf(s + 2 * i, "%2hhx", &out[i]);
}

static hs_limits max_limits(void) {
    hs_limits l;
    memset(&l, 0xff, sizeof l);
    return l;
}

/* ---- sample values ---- */

/* A PC with n slots, every other one signed (the shared sample, samples.h). */
static void sample_pc(hs_pc *pc, uint32_t n, hs_phase phase) {
    sample_pc_at(pc, 7, 0x0102030405060708ull, n, phase);
}

static void sample_tc(hs_tc *tc, uint32_t n) {
    sample_tc_at(tc, 7, 99, n);
}

/* Datums of 5, 0 and 0 bytes; the real hash. */
static void sample_block(hs_block *b, uint64_t height) {
    sample_block_at(b, height, 3, "", 0);
    CU_ASSERT_EQUAL(hs_block_compute_hash(b, &b->hash), HS_OK);
}

/* Fills *m with a sample message of the i-th shape; returns false past the last shape. */
static bool sample_msg(int i, hs_msg *m) {
    memset(m, 0, sizeof *m);
    switch (i) {
    case 0:
        m->type = HS_MSG_PROPOSAL;
        m->u.proposal.chain_id = 7;
        m->u.proposal.view = 12;
        sample_block(&m->u.proposal.block, 4);
        return true;
    case 1:
        m->type = HS_MSG_NUDGE;
        m->u.nudge.chain_id = 7;
        m->u.nudge.view = 13;
        sample_pc(&m->u.nudge.justify, 4, HS_PHASE_PRECOMMIT);
        return true;
    case 2:
        m->type = HS_MSG_PHASE_VOTE;
        m->u.phase_vote.chain_id = 7;
        m->u.phase_vote.view = 14;
        memset(m->u.phase_vote.block.b, 0x44, HS_HASH_LEN);
        m->u.phase_vote.phase = HS_PHASE_COMMIT;
        memset(m->u.phase_vote.sig.b, 0x55, HS_SIG_LEN);
        return true;
    case 3:
        m->type = HS_MSG_NEW_VIEW;
        m->u.new_view.chain_id = 7;
        m->u.new_view.view = 15;
        hs_pc_genesis(&m->u.new_view.highest_pc);
        return true;
    case 4:
        m->type = HS_MSG_TIMEOUT_VOTE;
        m->u.timeout_vote.chain_id = 7;
        m->u.timeout_vote.view = 16;
        memset(m->u.timeout_vote.sig.b, 0x66, HS_SIG_LEN);
        return true;
    case 5:
        m->type = HS_MSG_TIMEOUT_VOTE;
        m->u.timeout_vote.chain_id = 7;
        m->u.timeout_vote.view = 17;
        m->u.timeout_vote.has_highest_tc = true;
        sample_tc(&m->u.timeout_vote.highest_tc, 3);
        return true;
    case 6:
        m->type = HS_MSG_ADVANCE_VIEW;
        m->u.advance_view.is_tc = true;
        sample_tc(&m->u.advance_view.tc, 2);
        return true;
    case 7:
        m->type = HS_MSG_ADVANCE_VIEW;
        sample_pc(&m->u.advance_view.pc, 5, HS_PHASE_GENERIC);
        return true;
    case 8:
        m->type = HS_MSG_ADVERTISE_BLOCK;
        m->u.advertise_block.chain_id = 7;
        m->u.advertise_block.height = 1000;
        memset(m->u.advertise_block.sig.b, 0x77, HS_SIG_LEN);
        return true;
    case 9:
        m->type = HS_MSG_ADVERTISE_PC;
        sample_pc(&m->u.advertise_pc.highest_pc, 1, HS_PHASE_DECIDE);
        return true;
    case 10:
        m->type = HS_MSG_SYNC_REQUEST;
        m->u.sync_request.chain_id = 7;
        m->u.sync_request.start_height = 3;
        m->u.sync_request.limit = 10;
        return true;
    case 11:
        m->type = HS_MSG_SYNC_RESPONSE;
        sample_pc(&m->u.sync_response.highest_pc, 2, HS_PHASE_GENERIC);
        return true;
    case 12:
        m->type = HS_MSG_SYNC_RESPONSE;
        m->u.sync_response.n_blocks = 2;
        m->u.sync_response.blocks = calloc(2, sizeof(hs_block));
        sample_block(&m->u.sync_response.blocks[0], 1);
        sample_block(&m->u.sync_response.blocks[1], 2);
        sample_pc(&m->u.sync_response.highest_pc, 2, HS_PHASE_GENERIC);
        return true;
    default:
        return false;
    }
}

static void encode_msg(const hs_msg *m, uint8_t **p, size_t *n) {
    CU_ASSERT_EQUAL_FATAL(hs_msg_encode(m, p, n), HS_OK);
}

/* ---- spec vectors ---- */

static void test_vote_bytes_vector(void) {
    hs_hash h;
    memset(h.b, 0x11, sizeof h.b);
    uint8_t got[HS_VOTE_MSG_LEN], want[HS_VOTE_MSG_LEN];
    hs_phase_vote_bytes(7, 5, &h, HS_PHASE_PREPARE, got);
    hex("0700000000000000"
        "0500000000000000"
        "1111111111111111111111111111111111111111111111111111111111111111"
        "01",
        want, sizeof want);
    CU_ASSERT(memcmp(got, want, sizeof want) == 0);

    uint8_t tv[HS_TIMEOUT_MSG_LEN], tw[HS_TIMEOUT_MSG_LEN];
    hs_timeout_vote_bytes(7, 0x0a0b, tv);
    hex("07000000000000000b0a000000000000", tw, sizeof tw);
    CU_ASSERT(memcmp(tv, tw, sizeof tw) == 0);
}

static void test_block_hash_vector(void) {
    hs_block b = {0};
    hs_pc_genesis(&b.justify);
    hs_hash got, want, direct;
    CU_ASSERT_EQUAL(hs_block_compute_hash(&b, &got), HS_OK);
    hex("dbcfcc77f5774ed3333f3963eb84a324fd967de4d62c96631be6af1d6b3fe136", want.b, 32);
    CU_ASSERT(memcmp(got.b, want.b, 32) == 0);
    uint8_t zeros[93] = {0};
    hs_sha256(zeros, sizeof zeros, &direct);
    CU_ASSERT(memcmp(direct.b, want.b, 32) == 0);

    /* data is not hashed; data_hash and height are */
    hs_block c;
    sample_block(&c, 9);
    hs_hash h1, h2;
    CU_ASSERT_EQUAL(hs_block_compute_hash(&c, &h1), HS_OK);
    hs_bytes_free(&c.data.items[0]);
    CU_ASSERT_EQUAL(hs_block_compute_hash(&c, &h2), HS_OK);
    CU_ASSERT(memcmp(h1.b, h2.b, 32) == 0);
    c.height++;
    CU_ASSERT_EQUAL(hs_block_compute_hash(&c, &h2), HS_OK);
    CU_ASSERT(memcmp(h1.b, h2.b, 32) != 0);
    hs_block_free(&c);
}

static void test_genesis_pc_bytes(void) {
    hs_pc g;
    hs_pc_genesis(&g);
    hs_buf b;
    hs_buf_init(&b);
    hs_enc_pc(&b, &g);
    CU_ASSERT_EQUAL(b.len, 53);
    uint8_t zeros[53] = {0};
    CU_ASSERT(!b.oom && memcmp(b.p, zeros, 53) == 0);
    hs_pc d;
    CU_ASSERT_EQUAL(hs_decode_pc(b.p, b.len, NULL, &d), HS_OK);
    CU_ASSERT(hs_pc_is_genesis(&d));
    hs_pc_free(&d);
    hs_buf_free(&b);
}

/* Encoded length = 53 + Σ (1 if empty, 65 if present), spec §2.4. */
static void test_pc_length(void) {
    for (uint32_t n = 0; n < 9; n++) {
        hs_pc pc;
        sample_pc(&pc, n, HS_PHASE_PREPARE);
        uint32_t present = hs_sigset_count(&pc.sigs);
        hs_buf b;
        hs_buf_init(&b);
        hs_enc_pc(&b, &pc);
        CU_ASSERT_EQUAL(b.len, 53 + (n - present) * 1 + present * 65);
        /* layout: chain, view, block, phase, u32 n, first slot tag */
        CU_ASSERT_EQUAL(b.p[0], 7);
        CU_ASSERT_EQUAL(b.p[8], 0x08);
        CU_ASSERT_EQUAL(b.p[15], 0x01);
        CU_ASSERT_EQUAL(b.p[16], 0x22);
        CU_ASSERT_EQUAL(b.p[48], HS_PHASE_PREPARE);
        CU_ASSERT_EQUAL(b.p[49], n);
        if (n) CU_ASSERT_EQUAL(b.p[53], 1);
        if (n) CU_ASSERT_EQUAL(b.p[54], 0x40);
        if (n > 1) CU_ASSERT_EQUAL(b.p[53 + 65], 0);
        hs_pc d;
        CU_ASSERT_EQUAL(hs_decode_pc(b.p, b.len, NULL, &d), HS_OK);
        CU_ASSERT(hs_pc_equal(&pc, &d));
        hs_pc_free(&d);
        hs_pc_free(&pc);
        hs_buf_free(&b);
    }
}

/* ---- round trips ---- */

static void test_msg_roundtrip(void) {
    hs_msg m;
    for (int i = 0; sample_msg(i, &m); i++) {
        uint8_t *e1, *e2;
        size_t n1, n2;
        encode_msg(&m, &e1, &n1);
        hs_msg d;
        CU_ASSERT_EQUAL_FATAL(hs_msg_decode(e1, n1, NULL, &d), HS_OK);
        CU_ASSERT_EQUAL(d.type, m.type);
        encode_msg(&d, &e2, &n2);
        CU_ASSERT_EQUAL(n1, n2);
        CU_ASSERT(n1 == n2 && memcmp(e1, e2, n1) == 0);

        /* a deep copy encodes identically and shares nothing */
        hs_msg c;
        CU_ASSERT_EQUAL_FATAL(hs_msg_copy(&c, &d), HS_OK);
        hs_msg_free(&d);
        uint8_t *e3;
        size_t n3;
        encode_msg(&c, &e3, &n3);
        CU_ASSERT(n3 == n1 && memcmp(e1, e3, n1) == 0);
        CU_ASSERT_EQUAL(hs_msg_chain_id(&c), hs_msg_chain_id(&m));
        hs_msg_free(&c);
        CU_ASSERT_EQUAL(c.type, HS_MSG_NONE);
        free(e1);
        free(e2);
        free(e3);
        hs_msg_free(&m);
    }
}

/* Field-level checks on a few decoded messages and the tag bytes of each envelope. */
static void test_msg_tags_and_fields(void) {
    static const uint8_t prefix[13][4] = {
        {0, 0, 0}, {0, 0, 1}, {0, 0, 2}, {0, 0, 3}, {0, 1, 0}, {0, 1, 0}, {0, 1, 1, 0},
        {0, 1, 1, 1}, {0, 2, 0}, {0, 2, 1}, {1, 0}, {1, 1}, {1, 1},
    };
    static const uint8_t plen[13] = {3, 3, 3, 3, 3, 3, 4, 4, 3, 3, 2, 2, 2};
    hs_msg m;
    for (int i = 0; sample_msg(i, &m); i++) {
        uint8_t *e;
        size_t n;
        encode_msg(&m, &e, &n);
        CU_ASSERT(n >= plen[i] && memcmp(e, prefix[i], plen[i]) == 0);
        free(e);
        hs_msg_free(&m);
    }

    sample_msg(5, &m); /* TimeoutVote with a TC */
    uint8_t *e;
    size_t n;
    encode_msg(&m, &e, &n);
    CU_ASSERT_EQUAL(n, 3 + 8 + 8 + 64 + 1 + 16 + 4 + 2 * 65 + 1);
    CU_ASSERT_EQUAL(e[3 + 16 + 64], 1); /* Some */
    hs_msg d;
    CU_ASSERT_EQUAL_FATAL(hs_msg_decode(e, n, NULL, &d), HS_OK);
    CU_ASSERT(d.u.timeout_vote.has_highest_tc);
    CU_ASSERT_EQUAL(d.u.timeout_vote.highest_tc.view, 99);
    CU_ASSERT_EQUAL(d.u.timeout_vote.highest_tc.sigs.n, 3);
    uint64_t v;
    CU_ASSERT(hs_msg_view(&d, &v) && v == 17);
    CU_ASSERT(hs_msg_is_pacemaker(&d) && !hs_msg_is_hotstuff(&d) && !hs_msg_is_advertise(&d));
    hs_msg_free(&d);
    free(e);
    hs_msg_free(&m);

    sample_msg(10, &m); /* SyncRequest: 1 0 | chain | start | limit */
    encode_msg(&m, &e, &n);
    CU_ASSERT_EQUAL(n, 2 + 8 + 8 + 4);
    CU_ASSERT_EQUAL(e[2 + 16], 10);
    CU_ASSERT(!hs_msg_view(&m, &v));
    free(e);
    hs_msg_free(&m);

    sample_msg(0, &m);
    encode_msg(&m, &e, &n);
    CU_ASSERT_EQUAL_FATAL(hs_msg_decode(e, n, NULL, &d), HS_OK);
    hs_block *b = &d.u.proposal.block;
    CU_ASSERT_EQUAL(b->height, 4);
    CU_ASSERT_EQUAL(b->data.n, 3);
    CU_ASSERT(b->data.items[0].len == 5 && memcmp(b->data.items[0].p, "datum", 5) == 0);
    CU_ASSERT_EQUAL(b->data.items[2].len, 0);
    CU_ASSERT(hs_pc_equal(&b->justify, &m.u.proposal.block.justify));
    CU_ASSERT(memcmp(b->hash.b, m.u.proposal.block.hash.b, 32) == 0);
    CU_ASSERT(hs_msg_view(&d, &v) && v == 12);
    CU_ASSERT(hs_msg_is_hotstuff(&d));
    hs_msg_free(&d);
    free(e);
    hs_msg_free(&m);

    CU_ASSERT_STRING_EQUAL(hs_msg_type_name(HS_MSG_PROPOSAL), "Proposal");
    CU_ASSERT_STRING_EQUAL(hs_msg_type_name(HS_MSG_ADVERTISE_PC), "AdvertisePC");
    hs_msg none = {0};
    CU_ASSERT_EQUAL(hs_msg_encode(&none, &e, &n), HS_ERR_INVALID);
}

static void test_vs_roundtrip(void) {
    hs_validator_set vs = {0};
    for (int i = 5; i >= 1; i--) {
        hs_key k;
        memset(k.b, i * 16, sizeof k.b);
        CU_ASSERT_EQUAL(hs_vs_put(&vs, &k, (uint64_t)i * 1000), HS_OK);
    }
    hs_buf b;
    hs_buf_init(&b);
    hs_enc_vs(&b, &vs);
    CU_ASSERT_EQUAL(b.len, 4 + 5 * 32 + 4 + 5 * 40);
    CU_ASSERT_EQUAL(b.p[0], 5);
    CU_ASSERT_EQUAL(b.p[4], 0x10); /* ascending */
    CU_ASSERT_EQUAL(b.p[4 + 5 * 32], 5);
    CU_ASSERT_EQUAL(b.p[4 + 5 * 32 + 4 + 32], 0xe8); /* 1000 LE */
    CU_ASSERT_EQUAL(b.p[4 + 5 * 32 + 4 + 33], 0x03);
    hs_validator_set d;
    CU_ASSERT_EQUAL(hs_decode_vs(b.p, b.len, NULL, &d), HS_OK);
    CU_ASSERT(hs_vs_equal(&vs, &d));
    hs_vs_free(&d);

    hs_validator_set empty = {0};
    hs_buf_reset(&b);
    hs_enc_vs(&b, &empty);
    CU_ASSERT_EQUAL(b.len, 8);
    CU_ASSERT_EQUAL(hs_decode_vs(b.p, b.len, NULL, &d), HS_OK);
    CU_ASSERT_EQUAL(d.n, 0);
    hs_buf_free(&b);
    hs_vs_free(&vs);
}

static void test_update_sets_roundtrip(void) {
    hs_app_updates a = {0}, ad;
    CU_ASSERT_EQUAL(hs_app_updates_insert(&a, (const uint8_t *)"k2", 2, (const uint8_t *)"v", 1),
                    HS_OK);
    CU_ASSERT_EQUAL(hs_app_updates_insert(&a, (const uint8_t *)"k", 1, NULL, 0), HS_OK);
    CU_ASSERT_EQUAL(hs_app_updates_delete(&a, (const uint8_t *)"d", 1), HS_OK);
    hs_buf b;
    hs_buf_init(&b);
    hs_enc_app_updates(&b, &a);
    static const uint8_t want[] = {2, 0, 0, 0, 1, 0, 0, 0, 'k', 0, 0, 0, 0,
                                   2, 0, 0, 0, 'k', '2', 1, 0, 0, 0, 'v',
                                   1, 0, 0, 0, 1, 0, 0, 0, 'd'};
    CU_ASSERT(b.len == sizeof want && memcmp(b.p, want, sizeof want) == 0);
    hs_rd r;
    hs_rd_init(&r, b.p, b.len);
    CU_ASSERT_EQUAL(hs_dec_app_updates(&r, NULL, &ad), HS_OK);
    CU_ASSERT(hs_rd_done(&r));
    CU_ASSERT_EQUAL(ad.n_inserts, 2);
    CU_ASSERT_EQUAL(ad.n_deletes, 1);
    CU_ASSERT(ad.insert_keys[1].len == 2 && ad.insert_values[1].p[0] == 'v');
    hs_app_updates_free(&ad);
    hs_app_updates_free(&a);

    hs_vs_updates u = {0}, ud;
    hs_key k1, k2;
    memset(k1.b, 1, 32);
    memset(k2.b, 2, 32);
    CU_ASSERT_EQUAL(hs_vs_updates_insert(&u, &k2, 0x0102), HS_OK);
    CU_ASSERT_EQUAL(hs_vs_updates_delete(&u, &k1), HS_OK);
    hs_buf_reset(&b);
    hs_enc_vs_updates(&b, &u);
    CU_ASSERT_EQUAL(b.len, 4 + 40 + 4 + 32);
    CU_ASSERT_EQUAL(b.p[4 + 32], 0x02);
    CU_ASSERT_EQUAL(b.p[4 + 33], 0x01);
    hs_rd_init(&r, b.p, b.len);
    CU_ASSERT_EQUAL(hs_dec_vs_updates(&r, NULL, &ud), HS_OK);
    CU_ASSERT(hs_rd_done(&r));
    CU_ASSERT(ud.n_inserts == 1 && ud.inserts[0].power == 0x0102);
    CU_ASSERT(ud.n_deletes == 1 && ud.deletes[0].b[0] == 1);
    hs_vs_updates_free(&ud);
    hs_vs_updates_free(&u);

    hs_hash hs[3], *hd;
    uint32_t nh;
    for (int i = 0; i < 3; i++) memset(hs[i].b, i, 32);
    hs_buf_reset(&b);
    hs_enc_hashes(&b, hs, 3);
    CU_ASSERT_EQUAL(b.len, 4 + 96);
    hs_rd_init(&r, b.p, b.len);
    CU_ASSERT_EQUAL(hs_dec_hashes(&r, 3, &hd, &nh), HS_OK);
    CU_ASSERT(nh == 3 && memcmp(hd, hs, sizeof hs) == 0);
    free(hd);
    hs_rd_init(&r, b.p, b.len);
    CU_ASSERT_EQUAL(hs_dec_hashes(&r, 2, &hd, &nh), HS_ERR_INVALID); /* over max */
    CU_ASSERT(hd == NULL && nh == 0);
    hs_buf_free(&b);
}

/* ---- hostile input ---- */

/* Every proper prefix of every valid encoding fails cleanly, leaving *out empty. */
static void test_truncation_every_offset(void) {
    hs_msg m;
    for (int i = 0; sample_msg(i, &m); i++) {
        uint8_t *e;
        size_t n;
        encode_msg(&m, &e, &n);
        for (size_t k = 0; k < n; k++) {
            /* a fresh copy of exactly k bytes, so ASan sees any read past the end */
            uint8_t *t = malloc(k ? k : 1);
            memcpy(t, e, k);
            hs_msg d;
            CU_ASSERT_EQUAL(hs_msg_decode(t, k, NULL, &d), HS_ERR_INVALID);
            CU_ASSERT_EQUAL(d.type, HS_MSG_NONE);
            free(t);
        }
        /* trailing byte */
        uint8_t *t = malloc(n + 1);
        memcpy(t, e, n);
        t[n] = 0;
        hs_msg d;
        CU_ASSERT_EQUAL(hs_msg_decode(t, n + 1, NULL, &d), HS_ERR_INVALID);
        CU_ASSERT_EQUAL(d.type, HS_MSG_NONE);
        free(t);
        free(e);
        hs_msg_free(&m);
    }
}

/* The other decoders get the same treatment. */
static void test_truncation_values(void) {
    hs_buf bufs[5];
    for (int i = 0; i < 5; i++) hs_buf_init(&bufs[i]);
    hs_validator_set vs = {0};
    hs_app_updates au = {0};
    hs_vs_updates vu = {0};
    for (int i = 1; i <= 3; i++) {
        hs_key k;
        memset(k.b, i, 32);
        CU_ASSERT_EQUAL(hs_vs_put(&vs, &k, (uint64_t)i), HS_OK);
        CU_ASSERT_EQUAL(hs_vs_updates_insert(&vu, &k, (uint64_t)i), HS_OK);
        k.b[0] = 9;
        CU_ASSERT_EQUAL(hs_vs_updates_delete(&vu, &k), HS_OK);
        CU_ASSERT_EQUAL(hs_app_updates_insert(&au, k.b + 1, (size_t)i, k.b, 2), HS_OK);
        CU_ASSERT_EQUAL(hs_app_updates_delete(&au, k.b, (size_t)i), HS_OK);
    }
    hs_enc_vs(&bufs[0], &vs);
    hs_enc_app_updates(&bufs[1], &au);
    hs_enc_vs_updates(&bufs[2], &vu);
    hs_tc tc;
    sample_tc(&tc, 3);
    hs_enc_tc(&bufs[3], &tc);
    hs_block blk;
    sample_block(&blk, 2);
    hs_enc_block(&bufs[4], &blk);

    for (int which = 0; which < 5; which++) {
        const hs_buf *b = &bufs[which];
        for (size_t k = 0; k <= b->len; k++) {
            uint8_t *t = malloc(k ? k : 1);
            memcpy(t, b->p, k);
            hs_rd r;
            hs_rd_init(&r, t, k);
            hs_status st;
            union {
                hs_validator_set vs;
                hs_app_updates au;
                hs_vs_updates vu;
                hs_tc tc;
                hs_block blk;
            } out;
            switch (which) {
            case 0: st = hs_dec_vs(&r, NULL, &out.vs); break;
            case 1: st = hs_dec_app_updates(&r, NULL, &out.au); break;
            case 2: st = hs_dec_vs_updates(&r, NULL, &out.vu); break;
            case 3: st = hs_dec_tc(&r, NULL, &out.tc); break;
            default: st = hs_dec_block(&r, NULL, &out.blk); break;
            }
            if (k < b->len) {
                CU_ASSERT_EQUAL(st, HS_ERR_INVALID);
                CU_ASSERT(r.err);
            } else {
                CU_ASSERT_EQUAL(st, HS_OK);
                CU_ASSERT(hs_rd_done(&r));
                switch (which) {
                case 0: hs_vs_free(&out.vs); break;
                case 1: hs_app_updates_free(&out.au); break;
                case 2: hs_vs_updates_free(&out.vu); break;
                case 3: hs_tc_free(&out.tc); break;
                default: hs_block_free(&out.blk); break;
                }
            }
            free(t);
        }
    }
    uint8_t extra[512];
    memcpy(extra, bufs[3].p, bufs[3].len);
    extra[bufs[3].len] = 0;
    hs_tc d;
    CU_ASSERT_EQUAL(hs_decode_tc(extra, bufs[3].len, NULL, &d), HS_OK);
    hs_tc_free(&d);
    CU_ASSERT_EQUAL(hs_decode_tc(extra, bufs[3].len + 1, NULL, &d), HS_ERR_INVALID);
    memcpy(extra, bufs[0].p, bufs[0].len);
    extra[bufs[0].len] = 0;
    hs_validator_set dv;
    CU_ASSERT_EQUAL(hs_decode_vs(extra, bufs[0].len + 1, NULL, &dv), HS_ERR_INVALID);
    CU_ASSERT(dv.v == NULL && dv.n == 0);

    for (int i = 0; i < 5; i++) hs_buf_free(&bufs[i]);
    hs_vs_free(&vs);
    hs_app_updates_free(&au);
    hs_vs_updates_free(&vu);
    hs_tc_free(&tc);
    hs_block_free(&blk);
}

/* A count of 2^32-1 followed by 10 bytes must fail before allocating (even with no limits). */
static void test_huge_counts(void) {
    uint8_t buf[14];
    memset(buf, 0xff, 4);
    memset(buf + 4, 0, 10);
    hs_limits lim = max_limits();
    hs_rd r;
    hs_sigset s;
    hs_rd_init(&r, buf, sizeof buf);
    CU_ASSERT_EQUAL(hs_dec_sigset(&r, &lim, &s), HS_ERR_INVALID);
    hs_data dd;
    hs_rd_init(&r, buf, sizeof buf);
    CU_ASSERT_EQUAL(hs_dec_data(&r, &lim, &dd), HS_ERR_INVALID);
    hs_validator_set vs;
    hs_rd_init(&r, buf, sizeof buf);
    CU_ASSERT_EQUAL(hs_dec_vs(&r, &lim, &vs), HS_ERR_INVALID);
    hs_app_updates au;
    hs_rd_init(&r, buf, sizeof buf);
    CU_ASSERT_EQUAL(hs_dec_app_updates(&r, &lim, &au), HS_ERR_INVALID);
    hs_vs_updates vu;
    hs_rd_init(&r, buf, sizeof buf);
    CU_ASSERT_EQUAL(hs_dec_vs_updates(&r, &lim, &vu), HS_ERR_INVALID);
    hs_hash *h;
    uint32_t nh;
    hs_rd_init(&r, buf, sizeof buf);
    CU_ASSERT_EQUAL(hs_dec_hashes(&r, UINT32_MAX, &h, &nh), HS_ERR_INVALID);

    /* A sync response claiming 2^32-1 blocks; a datum claiming 4 GiB. */
    uint8_t msg[16] = {1, 1, 0xff, 0xff, 0xff, 0xff};
    hs_msg m;
    CU_ASSERT_EQUAL(hs_msg_decode(msg, sizeof msg, &lim, &m), HS_ERR_INVALID);
    uint8_t data[12] = {1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 'a', 'b', 'c', 'd'};
    hs_rd_init(&r, data, sizeof data);
    CU_ASSERT_EQUAL(hs_dec_data(&r, &lim, &dd), HS_ERR_INVALID);
    /* one app insert whose key claims 4 GiB */
    hs_rd_init(&r, data, sizeof data);
    CU_ASSERT_EQUAL(hs_dec_app_updates(&r, &lim, &au), HS_ERR_INVALID);
    CU_ASSERT(au.insert_keys == NULL && au.n_inserts == 0);
}

/* Writes a PC header (chain, view, block, phase) into b. */
static void put_pc_head(hs_buf *b, uint8_t phase) {
    hs_put_u64(b, 1);
    hs_put_u64(b, 2);
    uint8_t h[32] = {0};
    hs_put_raw(b, h, 32);
    hs_put_u8(b, phase);
}

static hs_status decode_buf_pc(const hs_buf *b, const hs_limits *lim) {
    hs_pc pc;
    hs_status st = hs_decode_pc(b->p, b->len, lim, &pc);
    if (st == HS_OK) hs_pc_free(&pc);
    return st;
}

static void test_bad_bools_phases(void) {
    hs_buf b;
    hs_buf_init(&b);
    for (int phase = 0; phase < 256; phase++) {
        hs_buf_reset(&b);
        put_pc_head(&b, (uint8_t)phase);
        hs_put_u32(&b, 0);
        CU_ASSERT_EQUAL(decode_buf_pc(&b, NULL), phase <= 4 ? HS_OK : HS_ERR_INVALID);
    }
    for (int tag = 0; tag < 256; tag++) { /* Option tag of a signature slot */
        hs_buf_reset(&b);
        put_pc_head(&b, 1);
        hs_put_u32(&b, 1);
        hs_put_u8(&b, (uint8_t)tag);
        if (tag == 1) {
            uint8_t sig[64] = {0};
            hs_put_raw(&b, sig, 64);
        }
        CU_ASSERT_EQUAL(decode_buf_pc(&b, NULL), tag <= 1 ? HS_OK : HS_ERR_INVALID);
    }
    /* PhaseVote phase byte; TimeoutVote Option tag */
    hs_msg m;
    uint8_t *e;
    size_t n;
    sample_msg(2, &m);
    encode_msg(&m, &e, &n);
    e[3 + 16 + 32] = 5;
    hs_msg d;
    CU_ASSERT_EQUAL(hs_msg_decode(e, n, NULL, &d), HS_ERR_INVALID);
    free(e);
    hs_msg_free(&m);
    sample_msg(4, &m);
    encode_msg(&m, &e, &n);
    CU_ASSERT_EQUAL(e[n - 1], 0);
    e[n - 1] = 2;
    CU_ASSERT_EQUAL(hs_msg_decode(e, n, NULL, &d), HS_ERR_INVALID);
    free(e);
    hs_msg_free(&m);
    hs_buf_free(&b);
}

static void test_bad_tags(void) {
    /* Valid message: NewView with the genesis PC; then corrupt each tag level. */
    hs_msg m, d;
    uint8_t *e;
    size_t n;
    sample_msg(3, &m);
    encode_msg(&m, &e, &n);
    CU_ASSERT_EQUAL(hs_msg_decode(e, n, NULL, &d), HS_OK);
    hs_msg_free(&d);
    for (int level = 0; level < 3; level++) {
        uint8_t saved = e[level];
        for (int v = 0; v < 256; v++) {
            e[level] = (uint8_t)v;
            hs_status st = hs_msg_decode(e, n, NULL, &d);
            /* Only tag paths that also parse this body may succeed. */
            if (st == HS_OK) {
                uint8_t *e2;
                size_t n2;
                encode_msg(&d, &e2, &n2);
                CU_ASSERT(n2 == n && memcmp(e, e2, n) == 0);
                free(e2);
                hs_msg_free(&d);
            }
            if (level == 0 && v > 1) CU_ASSERT_EQUAL(st, HS_ERR_INVALID);
            if (level == 1 && v > 2) CU_ASSERT_EQUAL(st, HS_ERR_INVALID);
            if (level == 2 && v > 3) CU_ASSERT_EQUAL(st, HS_ERR_INVALID);
        }
        e[level] = saved;
    }
    free(e);
    hs_msg_free(&m);

    static const uint8_t bad[][4] = {
        {2, 0, 0}, {0, 3, 0}, {0, 0, 4}, {0, 1, 2}, {0, 2, 2}, {1, 2}, {0, 1, 1, 2}, {0xff},
    };
    static const size_t badlen[] = {3, 3, 3, 3, 3, 2, 4, 1};
    for (size_t i = 0; i < sizeof badlen / sizeof badlen[0]; i++) {
        uint8_t buf[200] = {0};
        memcpy(buf, bad[i], badlen[i]);
        /* plenty of zero bytes after the tags: only the tag can be at fault */
        for (size_t tail = 0; tail < sizeof buf - badlen[i]; tail += 17) {
            CU_ASSERT_EQUAL(hs_msg_decode(buf, badlen[i] + tail, NULL, &d), HS_ERR_INVALID);
            CU_ASSERT_EQUAL(d.type, HS_MSG_NONE);
        }
    }
    CU_ASSERT_EQUAL(hs_msg_decode(NULL, 0, NULL, &d), HS_ERR_INVALID);
}

static void test_limits(void) {
    hs_limits lim = hs_limits_default();
    hs_buf b;
    hs_buf_init(&b);

    /* signature sets: max_validators slots pass, one more fails */
    lim.max_validators = 4;
    for (uint32_t n = 3; n <= 5; n++) {
        hs_pc pc;
        sample_pc(&pc, n, HS_PHASE_GENERIC);
        hs_buf_reset(&b);
        hs_enc_pc(&b, &pc);
        CU_ASSERT_EQUAL(decode_buf_pc(&b, &lim), n <= 4 ? HS_OK : HS_ERR_INVALID);
        hs_pc_free(&pc);
    }

    /* datums: count, per-datum bytes, per-block bytes */
    hs_block blk;
    sample_block(&blk, 1); /* datums of 5, 0, 0 bytes */
    hs_buf_reset(&b);
    hs_enc_block(&b, &blk);
    struct {
        uint32_t datums, datum_bytes;
        uint64_t block_bytes;
        hs_status want;
    } cases[] = {
        {3, 5, 5, HS_OK}, {2, 5, 5, HS_ERR_INVALID}, {3, 4, 5, HS_ERR_INVALID},
        {3, 5, 4, HS_ERR_INVALID}, {65536, 16 << 20, 64 << 20, HS_OK},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        lim = hs_limits_default();
        lim.max_datums = cases[i].datums;
        lim.max_datum_bytes = cases[i].datum_bytes;
        lim.max_block_bytes = cases[i].block_bytes;
        hs_rd r;
        hs_block d;
        hs_rd_init(&r, b.p, b.len);
        CU_ASSERT_EQUAL(hs_dec_block(&r, &lim, &d), cases[i].want);
        if (cases[i].want == HS_OK) hs_block_free(&d);
    }
    hs_block_free(&blk);

    /* sync response block count */
    hs_msg m, d;
    uint8_t *e;
    size_t n;
    sample_msg(12, &m);
    encode_msg(&m, &e, &n);
    lim = hs_limits_default();
    lim.max_sync_blocks = 2;
    CU_ASSERT_EQUAL(hs_msg_decode(e, n, &lim, &d), HS_OK);
    hs_msg_free(&d);
    lim.max_sync_blocks = 1;
    CU_ASSERT_EQUAL(hs_msg_decode(e, n, &lim, &d), HS_ERR_INVALID);
    free(e);
    hs_msg_free(&m);

    /* update sets: inserts + deletes, key and value lengths */
    hs_app_updates au = {0};
    CU_ASSERT_EQUAL(hs_app_updates_insert(&au, (const uint8_t *)"abc", 3,
                                          (const uint8_t *)"vvvv", 4), HS_OK);
    CU_ASSERT_EQUAL(hs_app_updates_delete(&au, (const uint8_t *)"x", 1), HS_OK);
    hs_buf_reset(&b);
    hs_enc_app_updates(&b, &au);
    struct {
        uint32_t entries, kbytes, vbytes;
        hs_status want;
    } acases[] = {
        {2, 3, 4, HS_OK}, {1, 3, 4, HS_ERR_INVALID}, {2, 2, 4, HS_ERR_INVALID},
        {2, 3, 3, HS_ERR_INVALID},
    };
    for (size_t i = 0; i < sizeof acases / sizeof acases[0]; i++) {
        lim = hs_limits_default();
        lim.max_update_entries = acases[i].entries;
        lim.max_app_key_bytes = acases[i].kbytes;
        lim.max_app_value_bytes = acases[i].vbytes;
        hs_rd r;
        hs_app_updates out;
        hs_rd_init(&r, b.p, b.len);
        CU_ASSERT_EQUAL(hs_dec_app_updates(&r, &lim, &out), acases[i].want);
        if (acases[i].want == HS_OK) hs_app_updates_free(&out);
    }
    hs_app_updates_free(&au);

    hs_vs_updates vu = {0};
    hs_key k;
    memset(k.b, 1, 32);
    CU_ASSERT_EQUAL(hs_vs_updates_insert(&vu, &k, 1), HS_OK);
    k.b[0] = 2;
    CU_ASSERT_EQUAL(hs_vs_updates_delete(&vu, &k), HS_OK);
    hs_buf_reset(&b);
    hs_enc_vs_updates(&b, &vu);
    for (uint32_t max = 1; max <= 2; max++) {
        lim = hs_limits_default();
        lim.max_update_entries = max;
        hs_rd r;
        hs_vs_updates out;
        hs_rd_init(&r, b.p, b.len);
        CU_ASSERT_EQUAL(hs_dec_vs_updates(&r, &lim, &out), max == 2 ? HS_OK : HS_ERR_INVALID);
        if (max == 2) hs_vs_updates_free(&out);
    }
    hs_vs_updates_free(&vu);

    /* validator set size */
    hs_validator_set vs = {0};
    for (int i = 0; i < 3; i++) {
        memset(k.b, i, 32);
        CU_ASSERT_EQUAL(hs_vs_put(&vs, &k, 1), HS_OK);
    }
    hs_buf_reset(&b);
    hs_enc_vs(&b, &vs);
    lim = hs_limits_default();
    lim.max_validators = 2;
    hs_validator_set dv;
    CU_ASSERT_EQUAL(hs_decode_vs(b.p, b.len, &lim, &dv), HS_ERR_INVALID);
    lim.max_validators = 3;
    CU_ASSERT_EQUAL(hs_decode_vs(b.p, b.len, &lim, &dv), HS_OK);
    hs_vs_free(&dv);
    hs_vs_free(&vs);
    hs_buf_free(&b);
}

/* Hand-built encodings that our encoder never produces. */
static void put_key(hs_buf *b, uint8_t v) {
    uint8_t k[32];
    memset(k, v, 32);
    hs_put_raw(b, k, 32);
}

static hs_status decode_vs_keys(const uint8_t *vec, uint32_t n, const uint8_t *map, uint32_t m) {
    hs_buf b;
    hs_buf_init(&b);
    hs_put_u32(&b, n);
    for (uint32_t i = 0; i < n; i++) put_key(&b, vec[i]);
    hs_put_u32(&b, m);
    for (uint32_t i = 0; i < m; i++) {
        put_key(&b, map[i]);
        hs_put_u64(&b, 1);
    }
    hs_validator_set vs;
    hs_status st = hs_decode_vs(b.p, b.len, NULL, &vs);
    if (st == HS_OK) hs_vs_free(&vs);
    hs_buf_free(&b);
    return st;
}

static void test_vs_rejects_noncanonical(void) {
    const uint8_t ok[3] = {1, 2, 3}, unsorted[3] = {1, 3, 2}, dup[3] = {1, 2, 2},
                  other[3] = {1, 2, 4};
    CU_ASSERT_EQUAL(decode_vs_keys(ok, 3, ok, 3), HS_OK);
    CU_ASSERT_EQUAL(decode_vs_keys(unsorted, 3, ok, 3), HS_ERR_INVALID);
    CU_ASSERT_EQUAL(decode_vs_keys(ok, 3, unsorted, 3), HS_ERR_INVALID);
    CU_ASSERT_EQUAL(decode_vs_keys(dup, 3, dup, 3), HS_ERR_INVALID);
    CU_ASSERT_EQUAL(decode_vs_keys(ok, 3, other, 3), HS_ERR_INVALID);
    CU_ASSERT_EQUAL(decode_vs_keys(ok, 3, ok, 2), HS_ERR_INVALID);
    CU_ASSERT_EQUAL(decode_vs_keys(ok, 2, ok, 3), HS_ERR_INVALID);
}

static hs_status decode_vsu_keys(const uint8_t *ins, uint32_t n, const uint8_t *del, uint32_t m) {
    hs_buf b;
    hs_buf_init(&b);
    hs_put_u32(&b, n);
    for (uint32_t i = 0; i < n; i++) {
        put_key(&b, ins[i]);
        hs_put_u64(&b, 5);
    }
    hs_put_u32(&b, m);
    for (uint32_t i = 0; i < m; i++) put_key(&b, del[i]);
    hs_rd r;
    hs_rd_init(&r, b.p, b.len);
    hs_vs_updates u;
    hs_status st = hs_dec_vs_updates(&r, NULL, &u);
    if (st == HS_OK) {
        CU_ASSERT(hs_rd_done(&r));
        hs_vs_updates_free(&u);
    } else {
        CU_ASSERT(u.inserts == NULL && u.deletes == NULL && u.n_inserts == 0);
    }
    hs_buf_free(&b);
    return st;
}

static hs_status decode_au_keys(const char *const *ins, uint32_t n, const char *const *del,
                                uint32_t m) {
    hs_buf b;
    hs_buf_init(&b);
    hs_put_u32(&b, n);
    for (uint32_t i = 0; i < n; i++) {
        hs_put_u32(&b, (uint32_t)strlen(ins[i]));
        hs_put_raw(&b, ins[i], strlen(ins[i]));
        hs_put_u32(&b, 1);
        hs_put_u8(&b, 'v');
    }
    hs_put_u32(&b, m);
    for (uint32_t i = 0; i < m; i++) {
        hs_put_u32(&b, (uint32_t)strlen(del[i]));
        hs_put_raw(&b, del[i], strlen(del[i]));
    }
    hs_rd r;
    hs_rd_init(&r, b.p, b.len);
    hs_app_updates u;
    hs_status st = hs_dec_app_updates(&r, NULL, &u);
    if (st == HS_OK) hs_app_updates_free(&u);
    hs_buf_free(&b);
    return st;
}

static void test_update_sets_reject_noncanonical(void) {
    const uint8_t a[3] = {1, 2, 3}, rev[2] = {2, 1}, dup[2] = {4, 4}, d1[2] = {4, 5},
                  clash[1] = {2};
    CU_ASSERT_EQUAL(decode_vsu_keys(a, 3, d1, 2), HS_OK);
    CU_ASSERT_EQUAL(decode_vsu_keys(rev, 2, d1, 2), HS_ERR_INVALID);
    CU_ASSERT_EQUAL(decode_vsu_keys(a, 3, dup, 2), HS_ERR_INVALID);
    CU_ASSERT_EQUAL(decode_vsu_keys(a, 3, rev, 2), HS_ERR_INVALID);
    CU_ASSERT_EQUAL(decode_vsu_keys(dup, 2, NULL, 0), HS_ERR_INVALID);
    CU_ASSERT_EQUAL(decode_vsu_keys(a, 3, clash, 1), HS_ERR_INVALID); /* in both */

    const char *ok[3] = {"", "a", "ab"}, *bad_order[2] = {"ab", "a"}, *dups[2] = {"k", "k"},
               *dels[2] = {"b", "c"}, *both[1] = {"a"};
    CU_ASSERT_EQUAL(decode_au_keys(ok, 3, dels, 2), HS_OK);
    CU_ASSERT_EQUAL(decode_au_keys(bad_order, 2, dels, 2), HS_ERR_INVALID);
    CU_ASSERT_EQUAL(decode_au_keys(dups, 2, NULL, 0), HS_ERR_INVALID);
    CU_ASSERT_EQUAL(decode_au_keys(NULL, 0, dups, 2), HS_ERR_INVALID);
    CU_ASSERT_EQUAL(decode_au_keys(ok, 3, both, 1), HS_ERR_INVALID);
    CU_ASSERT_EQUAL(decode_au_keys(NULL, 0, bad_order, 2), HS_ERR_INVALID);
}

static uint64_t rnd_state = 0x853c49e6748fea9bull;
static uint32_t rnd(void) {
    rnd_state = rnd_state * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(rnd_state >> 33);
}

/* Random byte mutations of valid messages: each decodes cleanly or fails cleanly, and any
 * accepted input is canonical (re-encodes to the very same bytes). */
static void test_mutation_fuzz(void) {
    hs_msg m;
    for (int i = 0; sample_msg(i, &m); i++) {
        uint8_t *e;
        size_t n;
        encode_msg(&m, &e, &n);
        for (int iter = 0; iter < 400; iter++) {
            uint8_t *t = malloc(n);
            memcpy(t, e, n);
            int flips = 1 + (int)(rnd() % 3);
            for (int f = 0; f < flips; f++) {
                size_t at = rnd() % n;
                t[at] = (rnd() & 1) ? (uint8_t)rnd() : (uint8_t)(t[at] ^ (1u << (rnd() % 8)));
            }
            hs_msg d;
            if (hs_msg_decode(t, n, NULL, &d) == HS_OK) {
                uint8_t *e2;
                size_t n2;
                encode_msg(&d, &e2, &n2);
                CU_ASSERT(n2 == n && memcmp(t, e2, n) == 0);
                free(e2);
                hs_msg_free(&d);
            } else {
                CU_ASSERT_EQUAL(d.type, HS_MSG_NONE);
            }
            free(t);
        }
        free(e);
        hs_msg_free(&m);
    }
}

static void test_reader_latches(void) {
    uint8_t b[3] = {1, 2, 3};
    hs_rd r;
    hs_rd_init(&r, b, sizeof b);
    CU_ASSERT_EQUAL(hs_get_u8(&r), 1);
    CU_ASSERT_EQUAL(hs_get_u32(&r), 0); /* overrun */
    CU_ASSERT(r.err);
    CU_ASSERT_EQUAL(hs_get_u8(&r), 0); /* stays failed */
    CU_ASSERT(!hs_rd_done(&r));
    hs_rd_init(&r, b, sizeof b);
    uint8_t out[3];
    hs_get_raw(&r, out, 3);
    CU_ASSERT(hs_rd_done(&r));
    CU_ASSERT_EQUAL(hs_get_u64(&(hs_rd){b, 3, 0, false}), 0);

    hs_buf w;
    hs_buf_init(&w);
    for (int i = 0; i < 1000; i++) hs_put_u64(&w, (uint64_t)i << 40);
    CU_ASSERT(!w.oom && w.len == 8000);
    hs_rd_init(&r, w.p, w.len);
    for (int i = 0; i < 1000; i++) CU_ASSERT_EQUAL(hs_get_u64(&r), (uint64_t)i << 40);
    CU_ASSERT(hs_rd_done(&r));
    hs_buf_reset(&w);
    CU_ASSERT(w.len == 0 && w.cap >= 8000);
    hs_buf_free(&w);
}

static const cu_test tests[] = {
    {"vote bytes vector (spec 2.4)", test_vote_bytes_vector},
    {"block hash vector (spec 2.5)", test_block_hash_vector},
    {"genesis PC is 53 zero bytes", test_genesis_pc_bytes},
    {"PC length and layout", test_pc_length},
    {"message round trips", test_msg_roundtrip},
    {"message tags and fields", test_msg_tags_and_fields},
    {"validator set bytes round trip", test_vs_roundtrip},
    {"update sets and hash list round trip", test_update_sets_roundtrip},
    {"messages truncated at every offset", test_truncation_every_offset},
    {"values truncated at every offset", test_truncation_values},
    {"huge counts fail before allocating", test_huge_counts},
    {"bad bools, options and phases", test_bad_bools_phases},
    {"bad variant tags", test_bad_tags},
    {"decoding limits", test_limits},
    {"validator set must be canonical", test_vs_rejects_noncanonical},
    {"update sets must be canonical", test_update_sets_reject_noncanonical},
    {"mutation fuzz", test_mutation_fuzz},
    {"reader and writer", test_reader_latches},
    {NULL, NULL},
};

int main(void) {
    return cu_run("codec", tests);
}
