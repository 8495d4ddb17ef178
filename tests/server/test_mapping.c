/* test_mapping.c - core <-> protobuf mapping (server/wire/mapping.c): round trips of every message
 * type and of the types the admin service shares, and hostile protobuf input. Values are
 * compared through their Borsh encoding (hs_msg_encode), which is canonical. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cu.h"
#include "samples.h"
#include "hotstuff/messages.h"
#include "wire/mapping.h"

/* ---- sample values ---- */

/* A PC with n slots, every other one signed (the shared sample, samples.h). */
static void sample_pc(hs_pc *pc, uint32_t n, hs_phase phase) {
    sample_pc_at(pc, 7, 0x0102030405060708ull, n, phase);
}

static void sample_tc(hs_tc *tc, uint32_t n) {
    sample_tc_at(tc, 7, 99, n);
}

static void sample_block(hs_block *b, uint64_t height) {
    sample_block_at(b, height, 4, "\0\1\2", 3);
    memset(b->hash.b, 0x11, HS_HASH_LEN);
}

/* One sample of each message type (variant picks between shapes of the same type). */
static void sample_msg(hs_msg *m, hs_msg_type t, int variant) {
    memset(m, 0, sizeof *m);
    m->type = t;
    switch (t) {
    case HS_MSG_PROPOSAL:
        m->u.proposal.chain_id = 7;
        m->u.proposal.view = 12;
        sample_block(&m->u.proposal.block, 5);
        break;
    case HS_MSG_NUDGE:
        m->u.nudge.chain_id = 7;
        m->u.nudge.view = 13;
        sample_pc(&m->u.nudge.justify, 4, HS_PHASE_PRECOMMIT);
        break;
    case HS_MSG_PHASE_VOTE:
        m->u.phase_vote.chain_id = 7;
        m->u.phase_vote.view = 14;
        memset(m->u.phase_vote.block.b, 0x55, HS_HASH_LEN);
        m->u.phase_vote.phase = variant ? HS_PHASE_GENERIC : HS_PHASE_COMMIT;
        memset(m->u.phase_vote.sig.b, 0x66, HS_SIG_LEN);
        break;
    case HS_MSG_NEW_VIEW:
        m->u.new_view.chain_id = 7;
        m->u.new_view.view = 15;
        if (variant) hs_pc_genesis(&m->u.new_view.highest_pc);
        else sample_pc(&m->u.new_view.highest_pc, 7, HS_PHASE_GENERIC);
        break;
    case HS_MSG_TIMEOUT_VOTE:
        m->u.timeout_vote.chain_id = 7;
        m->u.timeout_vote.view = 16;
        memset(m->u.timeout_vote.sig.b, 0x77, HS_SIG_LEN);
        if (!variant) {
            m->u.timeout_vote.has_highest_tc = true;
            sample_tc(&m->u.timeout_vote.highest_tc, 5);
        }
        break;
    case HS_MSG_ADVANCE_VIEW:
        m->u.advance_view.is_tc = variant == 0;
        if (variant == 0) sample_tc(&m->u.advance_view.tc, 4);
        else sample_pc(&m->u.advance_view.pc, 4, HS_PHASE_DECIDE);
        break;
    case HS_MSG_ADVERTISE_BLOCK:
        m->u.advertise_block.chain_id = 7;
        m->u.advertise_block.height = 1234567;
        memset(m->u.advertise_block.sig.b, 0x88, HS_SIG_LEN);
        break;
    case HS_MSG_ADVERTISE_PC:
        sample_pc(&m->u.advertise_pc.highest_pc, 2, HS_PHASE_GENERIC);
        break;
    case HS_MSG_SYNC_REQUEST:
        m->u.sync_request.chain_id = 7;
        m->u.sync_request.start_height = 40;
        m->u.sync_request.limit = 16;
        break;
    case HS_MSG_SYNC_RESPONSE: {
        uint32_t n = variant ? 0 : 3;
        hs_sync_response *s = &m->u.sync_response;
        if (n) {
            s->blocks = calloc(n, sizeof *s->blocks);
            CU_ASSERT_FATAL(s->blocks != NULL);
            s->n_blocks = n;
            for (uint32_t i = 0; i < n; i++) sample_block(&s->blocks[i], 40 + i);
        }
        sample_pc(&s->highest_pc, 3, HS_PHASE_GENERIC);
        break;
    }
    default:
        CU_FAIL("bad type");
    }
}

/* Borsh encodings equal <=> values equal. */
static void assert_msg_equal(const hs_msg *a, const hs_msg *b) {
    uint8_t *ea = NULL, *eb = NULL;
    size_t la = 0, lb = 0;
    CU_ASSERT_EQUAL_FATAL(hs_msg_encode(a, &ea, &la), HS_OK);
    CU_ASSERT_EQUAL_FATAL(hs_msg_encode(b, &eb, &lb), HS_OK);
    CU_ASSERT_EQUAL(la, lb);
    CU_ASSERT(la == lb && memcmp(ea, eb, la) == 0);
    free(ea);
    free(eb);
}

/* ---- round trips ---- */

static void test_every_message_round_trips(void) {
    for (int t = HS_MSG_PROPOSAL; t < HS_MSG_TYPE_COUNT; t++) {
        for (int variant = 0; variant < 2; variant++) {
            hs_msg m, back;
            sample_msg(&m, (hs_msg_type)t, variant);
            uint8_t *buf;
            size_t len;
            CU_ASSERT_EQUAL_FATAL(hs_map_msg_pack(&m, &buf, &len), HS_OK);
            char why[HS_MAP_REASON_MAX] = "";
            hs_status st = hs_map_msg_unpack(buf, len, NULL, &back, why);
            if (st != HS_OK) printf("\n%s: %s\n", hs_msg_type_name((hs_msg_type)t), why);
            CU_ASSERT_EQUAL_FATAL(st, HS_OK);
            CU_ASSERT_EQUAL(back.type, t);
            assert_msg_equal(&m, &back);
            free(buf);
            hs_msg_free(&m);
            hs_msg_free(&back);
        }
    }
}

static void test_phases_map_both_ways(void) {
    for (int p = 0; p < HS_PHASE_COUNT; p++) {
        Hotstuff__V1__Phase pb = hs_map_phase_to_pb((hs_phase)p);
        CU_ASSERT(pb != HOTSTUFF__V1__PHASE__PHASE_UNSPECIFIED);
        hs_phase back;
        CU_ASSERT_EQUAL(hs_map_phase_from_pb(pb, &back), HS_OK);
        CU_ASSERT_EQUAL(back, p);
    }
    CU_ASSERT_EQUAL(hs_map_phase_to_pb(HS_PHASE_GENERIC), HOTSTUFF__V1__PHASE__PHASE_GENERIC);
    CU_ASSERT_EQUAL(hs_map_phase_to_pb(HS_PHASE_DECIDE), HOTSTUFF__V1__PHASE__PHASE_DECIDE);
    hs_phase out;
    CU_ASSERT_EQUAL(hs_map_phase_from_pb(HOTSTUFF__V1__PHASE__PHASE_UNSPECIFIED, &out),
                    HS_ERR_INVALID);
    CU_ASSERT_EQUAL(hs_map_phase_from_pb(6, &out), HS_ERR_INVALID);
    CU_ASSERT_EQUAL(hs_map_phase_from_pb(-1, &out), HS_ERR_INVALID);
}

static void sample_vs(hs_validator_set *vs, uint32_t n) {
    memset(vs, 0, sizeof *vs);
    for (uint32_t i = 0; i < n; i++) {
        hs_key k;
        memset(k.b, (int)(0x10 + 3 * i), HS_KEY_LEN);
        CU_ASSERT_EQUAL(hs_vs_put(vs, &k, 10 + i), HS_OK);
    }
}

static void test_validator_sets_and_updates_round_trip(void) {
    hs_validator_set vs, vs2;
    sample_vs(&vs, 5);
    hs_pb_arena a;
    hs_pb_arena_init(&a);
    char why[HS_MAP_REASON_MAX];
    Hotstuff__V1__ValidatorSet *pvs = hs_map_vs_to_pb(&a, &vs);
    CU_ASSERT_FATAL(pvs != NULL);
    CU_ASSERT_EQUAL(hs_map_vs_from_pb(pvs, NULL, &vs2, why), HS_OK);
    CU_ASSERT(hs_vs_equal(&vs, &vs2));
    hs_vs_free(&vs2);

    /* Through bytes too, and the empty set. */
    size_t n = hotstuff__v1__validator_set__get_packed_size(pvs);
    uint8_t *buf = malloc(n);
    hotstuff__v1__validator_set__pack(pvs, buf);
    Hotstuff__V1__ValidatorSet *un = hotstuff__v1__validator_set__unpack(NULL, n, buf);
    CU_ASSERT_FATAL(un != NULL);
    CU_ASSERT_EQUAL(hs_map_vs_from_pb(un, NULL, &vs2, why), HS_OK);
    CU_ASSERT(hs_vs_equal(&vs, &vs2));
    hs_vs_free(&vs2);
    hotstuff__v1__validator_set__free_unpacked(un, NULL);
    free(buf);
    hs_validator_set empty = {0};
    CU_ASSERT_EQUAL(hs_map_vs_from_pb(hs_map_vs_to_pb(&a, &empty), NULL, &vs2, why), HS_OK);
    CU_ASSERT_EQUAL(vs2.n, 0);

    hs_vs_updates u = {0}, u2;
    hs_key k1, k2, k3;
    memset(k1.b, 1, HS_KEY_LEN);
    memset(k2.b, 2, HS_KEY_LEN);
    memset(k3.b, 3, HS_KEY_LEN);
    CU_ASSERT_EQUAL(hs_vs_updates_insert(&u, &k3, 30), HS_OK);
    CU_ASSERT_EQUAL(hs_vs_updates_insert(&u, &k1, 10), HS_OK);
    CU_ASSERT_EQUAL(hs_vs_updates_delete(&u, &k2), HS_OK);
    Hotstuff__V1__ValidatorSetUpdates *pu = hs_map_vs_updates_to_pb(&a, &u);
    CU_ASSERT_FATAL(pu != NULL);
    CU_ASSERT_EQUAL(hs_map_vs_updates_from_pb(pu, NULL, &u2, why), HS_OK);
    CU_ASSERT_EQUAL(u2.n_inserts, 2);
    CU_ASSERT_EQUAL(u2.n_deletes, 1);
    CU_ASSERT(memcmp(&u2.inserts[0], &u.inserts[0], 2 * sizeof u.inserts[0]) == 0);
    CU_ASSERT(memcmp(u2.deletes[0].b, k2.b, HS_KEY_LEN) == 0);
    hs_vs_updates_free(&u2);

    /* A key both inserted and deleted is refused. */
    pu->deletes[0].data = (uint8_t *)k1.b;
    CU_ASSERT_EQUAL(hs_map_vs_updates_from_pb(pu, NULL, &u2, why), HS_ERR_INVALID);
    CU_ASSERT(strstr(why, "also inserted") != NULL);
    CU_ASSERT_EQUAL(u2.n_inserts, 0);

    hs_app_updates au = {0}, au2;
    CU_ASSERT_EQUAL(hs_app_updates_insert(&au, (const uint8_t *)"b", 1,
                                          (const uint8_t *)"2", 1), HS_OK);
    CU_ASSERT_EQUAL(hs_app_updates_insert(&au, (const uint8_t *)"a", 1,
                                          (const uint8_t *)"", 0), HS_OK);
    CU_ASSERT_EQUAL(hs_app_updates_delete(&au, (const uint8_t *)"ab", 2), HS_OK);
    Hotstuff__V1__AppStateUpdates *pa = hs_map_app_updates_to_pb(&a, &au);
    CU_ASSERT_FATAL(pa != NULL);
    CU_ASSERT_EQUAL(hs_map_app_updates_from_pb(pa, NULL, &au2, why), HS_OK);
    CU_ASSERT_EQUAL(au2.n_inserts, 2);
    CU_ASSERT_EQUAL(au2.n_deletes, 1);
    CU_ASSERT(au2.insert_keys[0].len == 1 && au2.insert_keys[0].p[0] == 'a');
    CU_ASSERT(au2.insert_values[1].len == 1 && au2.insert_values[1].p[0] == '2');
    CU_ASSERT(au2.delete_keys[0].len == 2);
    hs_app_updates_free(&au2);

    /* Unsorted inserts are refused, not repaired. */
    Hotstuff__V1__KeyValue *tmp = pa->inserts[0];
    pa->inserts[0] = pa->inserts[1];
    pa->inserts[1] = tmp;
    CU_ASSERT_EQUAL(hs_map_app_updates_from_pb(pa, NULL, &au2, why), HS_ERR_INVALID);
    CU_ASSERT(strstr(why, "ascending") != NULL);
    /* A key over the limit is refused. */
    pa->inserts[1] = pa->inserts[0];
    pa->inserts[0] = tmp;
    hs_limits lim = hs_limits_default();
    lim.max_app_key_bytes = 1;
    CU_ASSERT_EQUAL(hs_map_app_updates_from_pb(pa, &lim, &au2, why), HS_ERR_INVALID);
    CU_ASSERT(strstr(why, "deletes[0]") != NULL);

    hs_app_updates_free(&au);
    hs_vs_updates_free(&u);
    hs_vs_free(&vs);
    hs_pb_arena_free(&a);
}

static void test_block_round_trips_alone(void) {
    hs_block b, back;
    sample_block(&b, 77);
    hs_pb_arena a = {0};
    Hotstuff__V1__Block *pb = hs_map_block_to_pb(&a, &b);
    CU_ASSERT_FATAL(pb != NULL);
    CU_ASSERT_EQUAL(pb->n_data, 3);
    CU_ASSERT_EQUAL(pb->justify->n_signatures, 4);
    CU_ASSERT_EQUAL(pb->justify->signatures[1]->signature.len, 0); /* absent slot */
    char why[HS_MAP_REASON_MAX];
    CU_ASSERT_EQUAL(hs_map_block_from_pb(pb, NULL, &back, why), HS_OK);
    CU_ASSERT_EQUAL(back.height, 77);
    CU_ASSERT(hs_pc_equal(&b.justify, &back.justify));
    CU_ASSERT_EQUAL(back.data.n, 3);
    CU_ASSERT_EQUAL(back.data.items[1].len, 0);
    CU_ASSERT(memcmp(back.data.items[2].p, "\0\1\2", 3) == 0);
    hs_block_free(&back);
    hs_block_free(&b);
    hs_pb_arena_free(&a);
}

static void test_arena_large_and_small(void) {
    hs_pb_arena a = {0};
    uint8_t *small1 = hs_pb_arena_alloc(&a, 10);
    uint8_t *big = hs_pb_arena_alloc(&a, 100000);
    uint8_t *small2 = hs_pb_arena_alloc(&a, 10);
    CU_ASSERT_FATAL(small1 && big && small2);
    CU_ASSERT((uintptr_t)big % _Alignof(max_align_t) == 0);
    CU_ASSERT((uintptr_t)small2 % _Alignof(max_align_t) == 0);
    CU_ASSERT(big[99999] == 0 && small2[9] == 0);
    memset(big, 1, 100000);
    memset(small1, 2, 10);
    memset(small2, 3, 10);
    hs_pb_arena_free(&a);
    CU_ASSERT(a.head == NULL);
}

/* ---- hostile input ---- */

/* Maps a mutated protobuf tree, expecting a refusal whose reason mentions `needle`. Also packs
 * the tree and feeds the bytes through hs_map_msg_unpack, which must refuse it too. */
static void expect_refused(const Hotstuff__V1__Message *pb, const hs_limits *lim,
                           const char *needle) {
    hs_msg out;
    char why[HS_MAP_REASON_MAX] = "";
    hs_status st = hs_map_msg_from_pb(pb, lim, &out, why);
    CU_ASSERT_EQUAL(st, HS_ERR_INVALID);
    if (!strstr(why, needle)) printf("\nreason '%s' lacks '%s'\n", why, needle);
    CU_ASSERT(strstr(why, needle) != NULL);
    CU_ASSERT_EQUAL(out.type, HS_MSG_NONE); /* left empty */

    size_t n = hotstuff__v1__message__get_packed_size(pb);
    uint8_t *buf = malloc(n ? n : 1);
    hotstuff__v1__message__pack(pb, buf);
    st = hs_map_msg_unpack(buf, n, lim, &out, why);
    CU_ASSERT_EQUAL(st, HS_ERR_INVALID);
    CU_ASSERT_EQUAL(out.type, HS_MSG_NONE);
    free(buf);
}

/* Builds the protobuf tree of a sample message into arena a (m must outlive the tree). */
static Hotstuff__V1__Message *pb_of(hs_pb_arena *a, hs_msg *m, hs_msg_type t, int variant) {
    sample_msg(m, t, variant);
    Hotstuff__V1__Message *pb = hs_map_msg_to_pb(a, m);
    CU_ASSERT_FATAL(pb != NULL);
    return pb;
}

static void test_wrong_lengths_refused(void) {
    hs_pb_arena a = {0};
    hs_msg m;
    uint8_t junk[100] = {0};

    Hotstuff__V1__Message *pb = pb_of(&a, &m, HS_MSG_PROPOSAL, 0);
    pb->proposal->block->hash.len = 31;
    expect_refused(pb, NULL, "hash: want 32 bytes, got 31");
    pb->proposal->block->hash.len = 32;
    pb->proposal->block->data_hash = (ProtobufCBinaryData){33, junk};
    expect_refused(pb, NULL, "data_hash: want 32 bytes, got 33");
    pb->proposal->block->data_hash.len = 32;
    pb->proposal->block->justify->block.len = 0;
    expect_refused(pb, NULL, "justify: PhaseCertificate: block: want 32 bytes, got 0");
    pb->proposal->block->justify->block.len = 32;
    pb->proposal->block->justify->signatures[0]->signature.len = 63;
    expect_refused(pb, NULL, "signatures[0]: want 0 or 64 bytes, got 63");
    hs_msg_free(&m);

    pb = pb_of(&a, &m, HS_MSG_PHASE_VOTE, 0);
    pb->phase_vote->signature.len = 65;
    pb->phase_vote->signature.data = junk;
    expect_refused(pb, NULL, "PhaseVote: signature: want 64 bytes, got 65");
    pb->phase_vote->signature.len = 64;
    pb->phase_vote->block.len = 1;
    expect_refused(pb, NULL, "PhaseVote: block: want 32");
    hs_msg_free(&m);

    pb = pb_of(&a, &m, HS_MSG_TIMEOUT_VOTE, 1);
    pb->timeout_vote->signature.len = 0;
    expect_refused(pb, NULL, "TimeoutVote: signature");
    hs_msg_free(&m);
    pb = pb_of(&a, &m, HS_MSG_ADVERTISE_BLOCK, 0);
    pb->advertise_block->signature.len = 3;
    expect_refused(pb, NULL, "AdvertiseBlock: signature");
    hs_msg_free(&m);

    /* A validator key of the wrong length. */
    hs_validator_set vs;
    sample_vs(&vs, 3);
    Hotstuff__V1__ValidatorSet *pvs = hs_map_vs_to_pb(&a, &vs);
    pvs->validators[1]->key.len = 31;
    hs_validator_set out;
    char why[HS_MAP_REASON_MAX];
    CU_ASSERT_EQUAL(hs_map_vs_from_pb(pvs, NULL, &out, why), HS_ERR_INVALID);
    CU_ASSERT(strstr(why, "validators[1].key: want 32 bytes, got 31") != NULL);
    CU_ASSERT_EQUAL(out.n, 0);
    CU_ASSERT(out.v == NULL);
    /* Duplicate and unsorted keys. */
    pvs->validators[1]->key.len = 32;
    pvs->validators[1]->key.data = pvs->validators[0]->key.data;
    CU_ASSERT_EQUAL(hs_map_vs_from_pb(pvs, NULL, &out, why), HS_ERR_INVALID);
    CU_ASSERT(strstr(why, "strictly ascending") != NULL);
    hs_vs_free(&vs);
    hs_pb_arena_free(&a);
}

static void test_bad_phases_refused(void) {
    hs_pb_arena a = {0};
    hs_msg m;
    Hotstuff__V1__Message *pb = pb_of(&a, &m, HS_MSG_PHASE_VOTE, 0);
    pb->phase_vote->phase = HOTSTUFF__V1__PHASE__PHASE_UNSPECIFIED;
    expect_refused(pb, NULL, "phase: phase 0 is not");
    pb->phase_vote->phase = (Hotstuff__V1__Phase)6;
    expect_refused(pb, NULL, "phase: phase 6 is not");
    pb->phase_vote->phase = (Hotstuff__V1__Phase)-5;
    expect_refused(pb, NULL, "phase -5");
    hs_msg_free(&m);

    pb = pb_of(&a, &m, HS_MSG_NUDGE, 0);
    pb->nudge->justify->phase = HOTSTUFF__V1__PHASE__PHASE_UNSPECIFIED;
    expect_refused(pb, NULL, "Nudge: justify: PhaseCertificate: phase");
    hs_msg_free(&m);
    hs_pb_arena_free(&a);
}

static void test_missing_oneofs_and_submessages_refused(void) {
    hs_pb_arena a = {0};
    hs_msg m;

    Hotstuff__V1__Message empty = HOTSTUFF__V1__MESSAGE__INIT;
    expect_refused(&empty, NULL, "no message set");
    /* Zero bytes are a valid encoding of an empty Message, which must still be refused. */
    hs_msg out;
    char why[HS_MAP_REASON_MAX];
    CU_ASSERT_EQUAL(hs_map_msg_unpack((const uint8_t *)"", 0, NULL, &out, why), HS_ERR_INVALID);
    CU_ASSERT_EQUAL(hs_map_msg_from_pb(NULL, NULL, &out, why), HS_ERR_INVALID);

    Hotstuff__V1__Message *pb = pb_of(&a, &m, HS_MSG_ADVANCE_VIEW, 0);
    pb->advance_view->progress_certificate_case =
        HOTSTUFF__V1__ADVANCE_VIEW__PROGRESS_CERTIFICATE__NOT_SET;
    expect_refused(pb, NULL, "AdvanceView: progress_certificate: not set");
    hs_msg_free(&m);

    pb = pb_of(&a, &m, HS_MSG_PROPOSAL, 0);
    pb->proposal->block->justify = NULL;
    expect_refused(pb, NULL, "Proposal: block: Block: justify: PhaseCertificate: missing");
    pb->proposal->block = NULL;
    expect_refused(pb, NULL, "Proposal: block: Block: missing");
    hs_msg_free(&m);

    pb = pb_of(&a, &m, HS_MSG_NEW_VIEW, 0);
    pb->new_view->highest_pc = NULL;
    expect_refused(pb, NULL, "NewView: highest_pc");
    hs_msg_free(&m);
    pb = pb_of(&a, &m, HS_MSG_ADVERTISE_PC, 0);
    pb->advertise_pc->highest_pc = NULL;
    expect_refused(pb, NULL, "AdvertisePC: highest_pc");
    hs_msg_free(&m);
    pb = pb_of(&a, &m, HS_MSG_SYNC_RESPONSE, 0);
    pb->block_sync_response->highest_pc = NULL;
    expect_refused(pb, NULL, "BlockSyncResponse: highest_pc");
    pb->block_sync_response->highest_pc = pb->block_sync_response->blocks[0]->justify;
    pb->block_sync_response->blocks[2]->hash.len = 5;
    expect_refused(pb, NULL, "BlockSyncResponse: blocks[2]: Block: hash");
    hs_msg_free(&m);
    hs_pb_arena_free(&a);
}

static void test_limits_enforced(void) {
    hs_pb_arena a = {0};
    hs_msg m;
    hs_limits lim = hs_limits_default();

    /* Too many signatures. */
    Hotstuff__V1__Message *pb = pb_of(&a, &m, HS_MSG_NEW_VIEW, 0); /* 7 slots */
    lim.max_validators = 6;
    expect_refused(pb, &lim, "signatures: 7 slots, limit 6");
    lim.max_validators = 7;
    hs_msg out;
    char why[HS_MAP_REASON_MAX];
    CU_ASSERT_EQUAL(hs_map_msg_from_pb(pb, &lim, &out, why), HS_OK);
    hs_msg_free(&out);
    hs_msg_free(&m);

    /* Datum count, datum size and block size. */
    pb = pb_of(&a, &m, HS_MSG_PROPOSAL, 0);
    lim = hs_limits_default();
    lim.max_datums = 2;
    expect_refused(pb, &lim, "data: 3 datums, limit 2");
    lim = hs_limits_default();
    lim.max_datum_bytes = 4;
    expect_refused(pb, &lim, "data[0]: 5 bytes, limit 4");
    lim = hs_limits_default();
    lim.max_block_bytes = 7;
    expect_refused(pb, &lim, "data: over 7 bytes");
    hs_msg_free(&m);

    /* Blocks per sync response. */
    pb = pb_of(&a, &m, HS_MSG_SYNC_RESPONSE, 0);
    lim = hs_limits_default();
    lim.max_sync_blocks = 2;
    expect_refused(pb, &lim, "blocks: 3 blocks, limit 2");
    hs_msg_free(&m);

    /* Update sets: total entries. */
    hs_vs_updates u = {0}, u2;
    hs_key k1, k2;
    memset(k1.b, 1, HS_KEY_LEN);
    memset(k2.b, 2, HS_KEY_LEN);
    hs_vs_updates_insert(&u, &k1, 1);
    hs_vs_updates_delete(&u, &k2);
    lim = hs_limits_default();
    lim.max_update_entries = 1;
    CU_ASSERT_EQUAL(
        hs_map_vs_updates_from_pb(hs_map_vs_updates_to_pb(&a, &u), &lim, &u2, why),
        HS_ERR_INVALID);
    CU_ASSERT(strstr(why, "2 entries, limit 1") != NULL);
    hs_vs_updates_free(&u);

    /* A validator set over the limit. */
    hs_validator_set vs, vs2;
    sample_vs(&vs, 4);
    lim = hs_limits_default();
    lim.max_validators = 3;
    CU_ASSERT_EQUAL(hs_map_vs_from_pb(hs_map_vs_to_pb(&a, &vs), &lim, &vs2, why),
                    HS_ERR_INVALID);
    CU_ASSERT(strstr(why, "4 validators, limit 3") != NULL);
    hs_vs_free(&vs);
    hs_pb_arena_free(&a);
}

static void test_garbage_bytes_refused(void) {
    hs_msg out;
    char why[HS_MAP_REASON_MAX];
    /* A truncated length-delimited field, an invalid wire type, random bytes. */
    const uint8_t trunc[] = {0x0a, 0x50, 0x01};
    const uint8_t badwire[] = {0x0f, 0x01};
    CU_ASSERT_EQUAL(hs_map_msg_unpack(trunc, sizeof trunc, NULL, &out, why), HS_ERR_INVALID);
    CU_ASSERT(strstr(why, "not a hotstuff.v1.Message") != NULL);
    CU_ASSERT_EQUAL(hs_map_msg_unpack(badwire, sizeof badwire, NULL, &out, why),
                    HS_ERR_INVALID);
    uint32_t seed = 12345;
    for (int round = 0; round < 2000; round++) {
        uint8_t buf[256];
        size_t len = (size_t)(seed % sizeof buf);
        for (size_t i = 0; i < len; i++) {
            seed = seed * 1103515245u + 12345u;
            buf[i] = (uint8_t)(seed >> 16);
        }
        seed = seed * 1103515245u + 12345u;
        hs_status st = hs_map_msg_unpack(buf, len, NULL, &out, why);
        CU_ASSERT(st == HS_OK || st == HS_ERR_INVALID);
        if (st == HS_OK) hs_msg_free(&out);
    }

    /* Mutations of a valid encoding: each result is either refused or a well-formed value. */
    hs_msg m;
    sample_msg(&m, HS_MSG_SYNC_RESPONSE, 0);
    uint8_t *enc;
    size_t n;
    CU_ASSERT_EQUAL_FATAL(hs_map_msg_pack(&m, &enc, &n), HS_OK);
    for (size_t i = 0; i < n; i += 3) {
        uint8_t saved = enc[i];
        enc[i] ^= 0x5a;
        hs_status st = hs_map_msg_unpack(enc, n, NULL, &out, why);
        CU_ASSERT(st == HS_OK || st == HS_ERR_INVALID);
        if (st == HS_OK) {
            uint8_t *borsh;
            size_t bl;
            CU_ASSERT_EQUAL(hs_msg_encode(&out, &borsh, &bl), HS_OK);
            free(borsh);
            hs_msg_free(&out);
        }
        enc[i] = saved;
    }
    free(enc);
    hs_msg_free(&m);

    hs_msg none = {0};
    CU_ASSERT_EQUAL(hs_map_msg_pack(&none, &enc, &n), HS_ERR_INVALID);
}

static const cu_test tests[] = {
    {"every message type round-trips through bytes", test_every_message_round_trips},
    {"phases map to 1..5 and UNSPECIFIED is refused", test_phases_map_both_ways},
    {"validator sets and update sets round-trip", test_validator_sets_and_updates_round_trip},
    {"a block round-trips on its own", test_block_round_trips_alone},
    {"arena serves large and small allocations", test_arena_large_and_small},
    {"wrong-length hashes, keys and signatures are refused", test_wrong_lengths_refused},
    {"UNSPECIFIED and out-of-range phases are refused", test_bad_phases_refused},
    {"missing oneofs and sub-messages are refused", test_missing_oneofs_and_submessages_refused},
    {"counts and sizes are held to the limits", test_limits_enforced},
    {"garbage and mutated bytes are refused or well-formed", test_garbage_bytes_refused},
    {NULL, NULL},
};

int main(void) {
    return cu_run("mapping", tests);
}
