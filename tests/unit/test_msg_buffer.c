/* test_msg_buffer.c - the future-view message buffer (spec §3.14, §2.12, §14.7).
 *
 * Costs: Proposal 384, Nudge 288, PhaseVote 312, NewView 288, TimeoutVote 312, AdvanceView 272
 * (192 for the key + the §2.12 size). Messages carry owned memory where their type allows it
 * (blocks with data, certificates with signatures) so ASan checks every free path.
 */
#include <stdlib.h>
#include <string.h>

#include "cu.h"
#include "msg_buffer.h"

#define C_PROPOSAL 384u
#define C_NUDGE 288u
#define C_VOTE 312u
#define C_NEW_VIEW 288u
#define C_TIMEOUT 312u
#define C_ADVANCE 272u

static void mk_sigs(hs_sigset *s, uint32_t n) {
    CU_ASSERT_FATAL(hs_sigset_init(s, n) == HS_OK);
    for (uint32_t i = 0; i < n; i += 2) s->slots[i].present = true;
}

static void put_id(uint8_t *p, uint32_t id) { memcpy(p, &id, sizeof id); }
static uint32_t get_id(const uint8_t *p) {
    uint32_t id;
    memcpy(&id, p, sizeof id);
    return id;
}

/* A message of `type` for `view`, tagged with `id` so tests can tell messages apart. */
static hs_msg mk(hs_msg_type type, uint64_t view, uint32_t id) {
    hs_msg m;
    memset(&m, 0, sizeof m);
    m.type = type;
    switch (type) {
    case HS_MSG_PROPOSAL: {
        hs_proposal *p = &m.u.proposal;
        p->view = view;
        p->block.height = id;
        mk_sigs(&p->block.justify.sigs, 4);
        p->block.data.items = calloc(2, sizeof *p->block.data.items);
        CU_ASSERT_FATAL(p->block.data.items != NULL);
        p->block.data.n = 2;
        CU_ASSERT_FATAL(hs_bytes_set(&p->block.data.items[0], "abc", 3) == HS_OK);
        CU_ASSERT_FATAL(hs_bytes_set(&p->block.data.items[1], "defgh", 5) == HS_OK);
        break;
    }
    case HS_MSG_NUDGE:
        m.u.nudge.view = view;
        m.u.nudge.justify.phase = HS_PHASE_PREPARE;
        put_id(m.u.nudge.justify.block.b, id);
        mk_sigs(&m.u.nudge.justify.sigs, 3);
        break;
    case HS_MSG_PHASE_VOTE:
        m.u.phase_vote.view = view;
        put_id(m.u.phase_vote.block.b, id);
        break;
    case HS_MSG_NEW_VIEW:
        m.u.new_view.view = view;
        put_id(m.u.new_view.highest_pc.block.b, id);
        mk_sigs(&m.u.new_view.highest_pc.sigs, 5);
        break;
    case HS_MSG_TIMEOUT_VOTE:
        m.u.timeout_vote.view = view;
        put_id(m.u.timeout_vote.sig.b, id);
        m.u.timeout_vote.has_highest_tc = true;
        m.u.timeout_vote.highest_tc.view = view ? view - 1 : 0;
        mk_sigs(&m.u.timeout_vote.highest_tc.sigs, 4);
        break;
    case HS_MSG_ADVANCE_VIEW:
        m.u.advance_view.is_tc = true;
        m.u.advance_view.tc.view = view;
        m.u.advance_view.tc.chain_id = id; /* the buffer never looks at it */
        mk_sigs(&m.u.advance_view.tc.sigs, 4);
        break;
    case HS_MSG_ADVERTISE_BLOCK: m.u.advertise_block.height = id; break;
    case HS_MSG_ADVERTISE_PC: put_id(m.u.advertise_pc.highest_pc.block.b, id); break;
    case HS_MSG_SYNC_REQUEST: m.u.sync_request.start_height = id; break;
    case HS_MSG_SYNC_RESPONSE: put_id(m.u.sync_response.highest_pc.block.b, id); break;
    case HS_MSG_NONE: break;
    }
    return m;
}

static uint32_t id_of(const hs_msg *m) {
    switch (m->type) {
    case HS_MSG_PROPOSAL: return (uint32_t)m->u.proposal.block.height;
    case HS_MSG_NUDGE: return get_id(m->u.nudge.justify.block.b);
    case HS_MSG_PHASE_VOTE: return get_id(m->u.phase_vote.block.b);
    case HS_MSG_NEW_VIEW: return get_id(m->u.new_view.highest_pc.block.b);
    case HS_MSG_TIMEOUT_VOTE: return get_id(m->u.timeout_vote.sig.b);
    case HS_MSG_ADVANCE_VIEW: return (uint32_t)m->u.advance_view.tc.chain_id;
    default: return UINT32_MAX;
    }
}

static hs_key key_of(uint32_t id) {
    hs_key k;
    memset(k.b, (int)(id & 0xff), sizeof k.b);
    return k;
}

/* Inserts a fresh message; returns whether the buffer took it. A refused message must come
 * back untouched; it is freed here. */
static bool ins(hs_msg_buffer *b, hs_msg_type type, uint64_t view, uint32_t id) {
    hs_msg m = mk(type, view, id);
    hs_key origin = key_of(id);
    bool inserted = false;
    CU_ASSERT_EQUAL_FATAL(hs_msg_buffer_insert(b, &origin, view, &m, &inserted), HS_OK);
    if (inserted) {
        CU_ASSERT_EQUAL(m.type, HS_MSG_NONE); /* ownership taken, left empty */
    } else {
        CU_ASSERT_EQUAL(m.type, type);
        if (hs_msg_buffer_cost(&m) > 0) CU_ASSERT_EQUAL(id_of(&m), id);
        hs_msg_free(&m);
    }
    return inserted;
}

static bool vote(hs_msg_buffer *b, uint64_t view, uint32_t id) {
    return ins(b, HS_MSG_PHASE_VOTE, view, id);
}

/* Pops from `view` and returns the id (UINT32_MAX if nothing), checking the origin. */
static uint32_t pop_id(hs_msg_buffer *b, uint64_t view) {
    hs_msg m;
    hs_key origin;
    memset(&m, 0, sizeof m);
    if (!hs_msg_buffer_pop(b, view, &origin, &m)) return UINT32_MAX;
    uint32_t id = id_of(&m);
    hs_key want = key_of(id);
    CU_ASSERT_EQUAL(memcmp(origin.b, want.b, sizeof want.b), 0);
    hs_msg_free(&m);
    return id;
}

/* ------------------------------------------------------------------------------------------ */

static void test_costs(void) {
    hs_msg m;
    memset(&m, 0, sizeof m);
    struct {
        hs_msg_type t;
        uint64_t cost;
    } want[] = {
        {HS_MSG_NONE, 0},           {HS_MSG_PROPOSAL, 384},      {HS_MSG_NUDGE, 288},
        {HS_MSG_PHASE_VOTE, 312},   {HS_MSG_NEW_VIEW, 288},      {HS_MSG_TIMEOUT_VOTE, 312},
        {HS_MSG_ADVANCE_VIEW, 272}, {HS_MSG_ADVERTISE_BLOCK, 0}, {HS_MSG_ADVERTISE_PC, 0},
        {HS_MSG_SYNC_REQUEST, 0},   {HS_MSG_SYNC_RESPONSE, 0},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        m.type = want[i].t;
        CU_ASSERT_EQUAL(hs_msg_buffer_cost(&m), want[i].cost);
    }
    CU_ASSERT_EQUAL(hs_msg_buffer_cost(NULL), 0);
}

static void test_non_progress_not_inserted(void) {
    hs_msg_buffer *b = hs_msg_buffer_new(1 << 20);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    hs_msg_type types[] = {HS_MSG_ADVERTISE_BLOCK, HS_MSG_ADVERTISE_PC, HS_MSG_SYNC_REQUEST,
                           HS_MSG_SYNC_RESPONSE, HS_MSG_NONE};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        CU_ASSERT_FALSE(ins(b, types[i], 3, 77));
    CU_ASSERT_EQUAL(hs_msg_buffer_count(b), 0);
    CU_ASSERT_EQUAL(hs_msg_buffer_bytes(b), 0);

    /* Invalid arguments. */
    hs_msg m = mk(HS_MSG_PHASE_VOTE, 1, 1);
    hs_key k = key_of(1);
    bool inserted = true;
    CU_ASSERT_EQUAL(hs_msg_buffer_insert(NULL, &k, 1, &m, &inserted), HS_ERR_INVALID);
    CU_ASSERT_FALSE(inserted);
    CU_ASSERT_EQUAL(hs_msg_buffer_insert(b, NULL, 1, &m, &inserted), HS_ERR_INVALID);
    CU_ASSERT_EQUAL(hs_msg_buffer_insert(b, &k, 1, NULL, &inserted), HS_ERR_INVALID);
    CU_ASSERT_EQUAL(hs_msg_buffer_insert(b, &k, 1, &m, NULL), HS_ERR_INVALID);
    CU_ASSERT_FALSE(hs_msg_buffer_pop(NULL, 1, &k, &m));
    hs_msg_buffer_drop_below(NULL, 5);
    CU_ASSERT_EQUAL(hs_msg_buffer_count(NULL), 0);
    CU_ASSERT_EQUAL(hs_msg_buffer_bytes(NULL), 0);
    hs_msg_free(&m);
    hs_msg_buffer_free(b);
    hs_msg_buffer_free(NULL);
}

static void test_fifo_per_view(void) {
    hs_msg_buffer *b = hs_msg_buffer_new(1 << 20);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    /* Interleaved views; each view's queue keeps arrival order. */
    CU_ASSERT_TRUE(vote(b, 5, 1));
    CU_ASSERT_TRUE(ins(b, HS_MSG_PROPOSAL, 7, 2));
    CU_ASSERT_TRUE(ins(b, HS_MSG_NUDGE, 5, 3));
    CU_ASSERT_TRUE(ins(b, HS_MSG_TIMEOUT_VOTE, 3, 4));
    CU_ASSERT_TRUE(ins(b, HS_MSG_NEW_VIEW, 5, 5));
    CU_ASSERT_TRUE(ins(b, HS_MSG_ADVANCE_VIEW, 7, 6));
    CU_ASSERT_EQUAL(hs_msg_buffer_count(b), 6);
    CU_ASSERT_EQUAL(hs_msg_buffer_bytes(b),
                    C_VOTE + C_PROPOSAL + C_NUDGE + C_TIMEOUT + C_NEW_VIEW + C_ADVANCE);

    CU_ASSERT_EQUAL(pop_id(b, 5), 1);
    CU_ASSERT_EQUAL(hs_msg_buffer_bytes(b), C_PROPOSAL + C_NUDGE + C_TIMEOUT + C_NEW_VIEW + C_ADVANCE);
    CU_ASSERT_EQUAL(pop_id(b, 5), 3);
    CU_ASSERT_TRUE(vote(b, 5, 8)); /* arrives after 5: goes behind it */
    CU_ASSERT_EQUAL(pop_id(b, 5), 5);
    CU_ASSERT_EQUAL(pop_id(b, 5), 8);
    CU_ASSERT_EQUAL(pop_id(b, 5), UINT32_MAX);
    CU_ASSERT_EQUAL(pop_id(b, 7), 2);
    CU_ASSERT_EQUAL(pop_id(b, 7), 6);
    CU_ASSERT_EQUAL(pop_id(b, 3), 4);
    CU_ASSERT_EQUAL(hs_msg_buffer_count(b), 0);
    CU_ASSERT_EQUAL(hs_msg_buffer_bytes(b), 0);
    hs_msg_buffer_free(b);
}

static void test_pop_exact_view_only(void) {
    hs_msg_buffer *b = hs_msg_buffer_new(1 << 20);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    CU_ASSERT_TRUE(vote(b, 10, 1));
    CU_ASSERT_TRUE(vote(b, 20, 2));
    CU_ASSERT_EQUAL(pop_id(b, 9), UINT32_MAX);
    CU_ASSERT_EQUAL(pop_id(b, 11), UINT32_MAX);
    CU_ASSERT_EQUAL(pop_id(b, 15), UINT32_MAX);
    CU_ASSERT_EQUAL(pop_id(b, 21), UINT32_MAX);
    CU_ASSERT_EQUAL(pop_id(b, 0), UINT32_MAX);
    CU_ASSERT_EQUAL(pop_id(b, UINT64_MAX), UINT32_MAX);
    CU_ASSERT_EQUAL(hs_msg_buffer_count(b), 2);
    CU_ASSERT_EQUAL(pop_id(b, 20), 2);
    CU_ASSERT_EQUAL(pop_id(b, 10), 1);
    /* An origin pointer is optional. */
    CU_ASSERT_TRUE(vote(b, 4, 3));
    hs_msg m;
    CU_ASSERT_TRUE(hs_msg_buffer_pop(b, 4, NULL, &m));
    CU_ASSERT_EQUAL(id_of(&m), 3);
    hs_msg_free(&m);
    hs_msg_buffer_free(b);
}

static void test_drop_below(void) {
    hs_msg_buffer *b = hs_msg_buffer_new(1 << 20);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    CU_ASSERT_TRUE(ins(b, HS_MSG_PROPOSAL, 1, 1));
    CU_ASSERT_TRUE(ins(b, HS_MSG_NUDGE, 2, 2));
    CU_ASSERT_TRUE(ins(b, HS_MSG_TIMEOUT_VOTE, 3, 3));
    CU_ASSERT_TRUE(ins(b, HS_MSG_ADVANCE_VIEW, 3, 4));
    CU_ASSERT_TRUE(ins(b, HS_MSG_NEW_VIEW, 4, 5));
    CU_ASSERT_EQUAL(hs_msg_buffer_count(b), 5);

    hs_msg_buffer_drop_below(b, 0); /* nothing below 0 */
    hs_msg_buffer_drop_below(b, 1); /* nothing below 1 */
    CU_ASSERT_EQUAL(hs_msg_buffer_count(b), 5);

    hs_msg_buffer_drop_below(b, 3); /* views 1 and 2 go, with their costs */
    CU_ASSERT_EQUAL(hs_msg_buffer_count(b), 3);
    CU_ASSERT_EQUAL(hs_msg_buffer_bytes(b), C_TIMEOUT + C_ADVANCE + C_NEW_VIEW);
    CU_ASSERT_EQUAL(pop_id(b, 1), UINT32_MAX);
    CU_ASSERT_EQUAL(pop_id(b, 2), UINT32_MAX);

    hs_msg_buffer_drop_below(b, 4);
    CU_ASSERT_EQUAL(hs_msg_buffer_count(b), 1);
    CU_ASSERT_EQUAL(hs_msg_buffer_bytes(b), C_NEW_VIEW);
    hs_msg_buffer_drop_below(b, UINT64_MAX);
    CU_ASSERT_EQUAL(hs_msg_buffer_count(b), 0);
    CU_ASSERT_EQUAL(hs_msg_buffer_bytes(b), 0);
    hs_msg_buffer_drop_below(b, UINT64_MAX); /* on an empty buffer */

    /* Freed capacity is usable again: with capacity for two votes, dropping makes room. */
    hs_msg_buffer *s = hs_msg_buffer_new(2 * C_VOTE);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_TRUE(vote(s, 1, 1));
    CU_ASSERT_TRUE(vote(s, 2, 2));
    CU_ASSERT_FALSE(vote(s, 3, 3)); /* full, and 3 is not below the highest view */
    hs_msg_buffer_drop_below(s, 2);
    CU_ASSERT_TRUE(vote(s, 3, 3)); /* fits again: the dropped cost was subtracted */
    CU_ASSERT_EQUAL(hs_msg_buffer_bytes(s), 2 * C_VOTE);
    CU_ASSERT_EQUAL(pop_id(s, 2), 2);
    CU_ASSERT_EQUAL(pop_id(s, 3), 3);
    hs_msg_buffer_free(s);
    hs_msg_buffer_free(b);
}

/* Eviction: highest views first, newest first within a view, until >= cost bytes are gone. */
static void test_eviction_order(void) {
    hs_msg_buffer *b = hs_msg_buffer_new(4 * C_VOTE);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    CU_ASSERT_TRUE(vote(b, 10, 1));
    CU_ASSERT_TRUE(vote(b, 10, 2));
    CU_ASSERT_TRUE(vote(b, 20, 3));
    CU_ASSERT_TRUE(vote(b, 20, 4));
    CU_ASSERT_EQUAL(hs_msg_buffer_bytes(b), 4 * C_VOTE); /* exactly full: not overloaded */

    /* View 5 < 20: evict the newest of view 20 (id 4), which frees enough. */
    CU_ASSERT_TRUE(vote(b, 5, 5));
    CU_ASSERT_EQUAL(hs_msg_buffer_count(b), 4);
    CU_ASSERT_EQUAL(hs_msg_buffer_bytes(b), 4 * C_VOTE);

    /* View 15 < 20: evict id 3, emptying view 20. */
    CU_ASSERT_TRUE(vote(b, 15, 6));
    CU_ASSERT_EQUAL(pop_id(b, 20), UINT32_MAX);

    /* Views >= the highest buffered view (15) are refused when overloaded. */
    CU_ASSERT_FALSE(vote(b, 30, 7));
    CU_ASSERT_FALSE(vote(b, 15, 8));
    CU_ASSERT_EQUAL(hs_msg_buffer_count(b), 4);

    /* A Proposal (384) for view 7: evicting id 6 (312) is not enough, id 2 goes too. */
    CU_ASSERT_TRUE(ins(b, HS_MSG_PROPOSAL, 7, 9));
    CU_ASSERT_EQUAL(hs_msg_buffer_count(b), 3);
    CU_ASSERT_EQUAL(hs_msg_buffer_bytes(b), 2 * C_VOTE + C_PROPOSAL);
    CU_ASSERT_EQUAL(pop_id(b, 15), UINT32_MAX);
    CU_ASSERT_EQUAL(pop_id(b, 10), 1);
    CU_ASSERT_EQUAL(pop_id(b, 10), UINT32_MAX);
    CU_ASSERT_EQUAL(pop_id(b, 7), 9);
    CU_ASSERT_EQUAL(pop_id(b, 5), 5);
    CU_ASSERT_EQUAL(hs_msg_buffer_count(b), 0);
    CU_ASSERT_EQUAL(hs_msg_buffer_bytes(b), 0);
    hs_msg_buffer_free(b);
}

/* Eviction may reach down into the inserted message's own view and below it. */
static void test_eviction_into_lower_views(void) {
    hs_msg_buffer *b = hs_msg_buffer_new(C_ADVANCE * 3);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    CU_ASSERT_TRUE(ins(b, HS_MSG_ADVANCE_VIEW, 3, 1));
    CU_ASSERT_TRUE(ins(b, HS_MSG_ADVANCE_VIEW, 4, 2));
    CU_ASSERT_TRUE(ins(b, HS_MSG_ADVANCE_VIEW, 9, 3));
    /* A Proposal (384) for view 4: evicts id 3 (272) then id 2 (view 4 itself, 544 total). */
    CU_ASSERT_TRUE(ins(b, HS_MSG_PROPOSAL, 4, 4));
    CU_ASSERT_EQUAL(hs_msg_buffer_count(b), 2);
    CU_ASSERT_EQUAL(hs_msg_buffer_bytes(b), C_ADVANCE + C_PROPOSAL);
    CU_ASSERT_EQUAL(pop_id(b, 4), 4);
    CU_ASSERT_EQUAL(pop_id(b, 4), UINT32_MAX);

    /* Eviction stops as soon as enough is gone: one proposal frees a proposal's cost. */
    CU_ASSERT_TRUE(ins(b, HS_MSG_PROPOSAL, 8, 5)); /* 272 + 384 = 656 <= 816 */
    CU_ASSERT_TRUE(ins(b, HS_MSG_PROPOSAL, 2, 6)); /* overloaded: evicts 5 (384 >= 384) */
    CU_ASSERT_EQUAL(hs_msg_buffer_count(b), 2);
    CU_ASSERT_EQUAL(pop_id(b, 8), UINT32_MAX);
    CU_ASSERT_EQUAL(pop_id(b, 3), 1);
    CU_ASSERT_EQUAL(pop_id(b, 2), 6);
    CU_ASSERT_EQUAL(hs_msg_buffer_bytes(b), 0);
    hs_msg_buffer_free(b);
}

/* The four cells of (overloaded, acceptable), plus the empty-buffer case. */
static void test_insert_rule_matrix(void) {
    /* !overloaded, !acceptable (view >= highest): inserted, nothing evicted. */
    hs_msg_buffer *b = hs_msg_buffer_new(3 * C_VOTE);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    CU_ASSERT_TRUE(vote(b, 10, 1));
    CU_ASSERT_TRUE(vote(b, 10, 2));
    CU_ASSERT_EQUAL(hs_msg_buffer_count(b), 2);
    hs_msg_buffer_free(b);

    /* !overloaded, acceptable (view < highest): inserted, nothing evicted. */
    b = hs_msg_buffer_new(3 * C_VOTE);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    CU_ASSERT_TRUE(vote(b, 10, 1));
    CU_ASSERT_TRUE(vote(b, 9, 2));
    CU_ASSERT_EQUAL(hs_msg_buffer_count(b), 2);
    CU_ASSERT_EQUAL(hs_msg_buffer_bytes(b), 2 * C_VOTE);
    hs_msg_buffer_free(b);

    /* overloaded, acceptable: evict then insert. One byte short of room is overloaded. */
    b = hs_msg_buffer_new(2 * C_VOTE - 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    CU_ASSERT_TRUE(vote(b, 10, 1));
    CU_ASSERT_TRUE(vote(b, 9, 2));
    CU_ASSERT_EQUAL(hs_msg_buffer_count(b), 1);
    CU_ASSERT_EQUAL(pop_id(b, 9), 2);
    hs_msg_buffer_free(b);

    /* overloaded, !acceptable: refused, nothing evicted. */
    b = hs_msg_buffer_new(2 * C_VOTE - 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    CU_ASSERT_TRUE(vote(b, 10, 1));
    CU_ASSERT_FALSE(vote(b, 10, 2));
    CU_ASSERT_FALSE(vote(b, 11, 3));
    CU_ASSERT_EQUAL(hs_msg_buffer_count(b), 1);
    CU_ASSERT_EQUAL(pop_id(b, 10), 1);
    hs_msg_buffer_free(b);

    /* Exactly full after insert is not overloaded (size + cost == capacity). */
    b = hs_msg_buffer_new(C_VOTE + C_PROPOSAL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    CU_ASSERT_TRUE(vote(b, 10, 1));
    CU_ASSERT_TRUE(ins(b, HS_MSG_PROPOSAL, 12, 2));
    CU_ASSERT_EQUAL(hs_msg_buffer_count(b), 2);
    CU_ASSERT_EQUAL(hs_msg_buffer_bytes(b), C_VOTE + C_PROPOSAL);
    hs_msg_buffer_free(b);

    /* Empty buffer, capacity smaller than one message: overloaded but acceptable (empty), so
     * the rule inserts it, and bytes exceed the capacity. */
    b = hs_msg_buffer_new(100);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    CU_ASSERT_TRUE(ins(b, HS_MSG_PROPOSAL, 10, 1));
    CU_ASSERT_EQUAL(hs_msg_buffer_bytes(b), C_PROPOSAL);
    CU_ASSERT_FALSE(vote(b, 10, 2)); /* overloaded, not below the highest view */
    CU_ASSERT_FALSE(vote(b, 50, 3));
    CU_ASSERT_TRUE(vote(b, 9, 4)); /* below: evicts the proposal (384 >= 312), inserts */
    CU_ASSERT_EQUAL(hs_msg_buffer_count(b), 1);
    CU_ASSERT_EQUAL(hs_msg_buffer_bytes(b), C_VOTE);
    CU_ASSERT_EQUAL(pop_id(b, 10), UINT32_MAX);
    CU_ASSERT_EQUAL(pop_id(b, 9), 4);
    hs_msg_buffer_free(b);

    /* Huge capacity: never overloaded (and no overflow in size + cost). */
    b = hs_msg_buffer_new(UINT64_MAX);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    for (uint32_t i = 0; i < 100; i++) CU_ASSERT_TRUE(vote(b, 1000 - i % 7, i));
    CU_ASSERT_EQUAL(hs_msg_buffer_count(b), 100);
    hs_msg_buffer_free(b); /* frees the buffered messages (ASan: no leak) */
}

static void test_capacity_zero(void) {
    hs_msg_buffer *b = hs_msg_buffer_new(0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    /* Empty: acceptable, so one message is still buffered. */
    CU_ASSERT_TRUE(vote(b, 10, 1));
    CU_ASSERT_EQUAL(hs_msg_buffer_count(b), 1);
    CU_ASSERT_EQUAL(hs_msg_buffer_bytes(b), C_VOTE);
    CU_ASSERT_FALSE(vote(b, 10, 2));
    CU_ASSERT_FALSE(vote(b, 11, 3));
    /* A lower view replaces it. */
    CU_ASSERT_TRUE(ins(b, HS_MSG_ADVANCE_VIEW, 8, 4));
    CU_ASSERT_EQUAL(hs_msg_buffer_count(b), 1);
    CU_ASSERT_EQUAL(hs_msg_buffer_bytes(b), C_ADVANCE);
    CU_ASSERT_EQUAL(pop_id(b, 10), UINT32_MAX);
    CU_ASSERT_EQUAL(pop_id(b, 8), 4);
    CU_ASSERT_EQUAL(hs_msg_buffer_bytes(b), 0);
    /* Empty again after the pop (the §14.7 fix): accepts again. */
    CU_ASSERT_TRUE(vote(b, 20, 5));
    hs_msg_buffer_drop_below(b, 21);
    CU_ASSERT_EQUAL(hs_msg_buffer_bytes(b), 0);
    CU_ASSERT_TRUE(vote(b, 30, 6));
    CU_ASSERT_EQUAL(hs_msg_buffer_count(b), 1);
    hs_msg_buffer_free(b);
}

/* ---- model check: a reference model of spec §3.14, compared after every operation --------- */

#define MODEL_MAX 256
typedef struct model {
    uint64_t capacity, bytes;
    int n;
    struct { uint64_t view, cost; uint32_t id; } e[MODEL_MAX]; /* in arrival order */
} model;

static uint64_t cost_of(hs_msg_type t) {
    hs_msg m;
    memset(&m, 0, sizeof m);
    m.type = t;
    return hs_msg_buffer_cost(&m);
}

static void model_remove(model *md, int i) {
    md->bytes -= md->e[i].cost;
    memmove(&md->e[i], &md->e[i + 1], (size_t)(md->n - i - 1) * sizeof md->e[0]);
    md->n--;
}

static bool model_insert(model *md, uint64_t view, uint64_t cost, uint32_t id) {
    uint64_t highest = 0;
    for (int i = 0; i < md->n; i++)
        if (md->e[i].view > highest) highest = md->e[i].view;
    bool overloaded = md->bytes + cost > md->capacity;
    bool acceptable = md->n == 0 || view < highest;
    if (overloaded && acceptable) {
        uint64_t evicted = 0;
        while (evicted < cost && md->n > 0) {
            /* Highest view; the latest arrival within it. */
            int best = 0;
            for (int i = 1; i < md->n; i++)
                if (md->e[i].view >= md->e[best].view) best = i;
            evicted += md->e[best].cost;
            model_remove(md, best);
        }
    }
    if (overloaded && !acceptable) return false;
    CU_ASSERT_FATAL(md->n < MODEL_MAX);
    md->e[md->n].view = view;
    md->e[md->n].cost = cost;
    md->e[md->n].id = id;
    md->n++;
    md->bytes += cost;
    return true;
}

static uint32_t model_pop(model *md, uint64_t view) {
    for (int i = 0; i < md->n; i++) {
        if (md->e[i].view == view) {
            uint32_t id = md->e[i].id;
            model_remove(md, i);
            return id;
        }
    }
    return UINT32_MAX;
}

static void model_drop_below(model *md, uint64_t view) {
    for (int i = 0; i < md->n;) {
        if (md->e[i].view < view)
            model_remove(md, i);
        else
            i++;
    }
}

static uint32_t rng_state = 12345;
static uint32_t rnd(uint32_t n) {
    rng_state = rng_state * 1103515245u + 12345u;
    return (rng_state >> 8) % n;
}

static void run_model(uint64_t capacity, int steps) {
    static const hs_msg_type kinds[] = {HS_MSG_PROPOSAL, HS_MSG_NUDGE, HS_MSG_PHASE_VOTE,
                                        HS_MSG_NEW_VIEW, HS_MSG_TIMEOUT_VOTE,
                                        HS_MSG_ADVANCE_VIEW};
    model md;
    memset(&md, 0, sizeof md);
    md.capacity = capacity;
    hs_msg_buffer *b = hs_msg_buffer_new(capacity);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    uint64_t floor = 0;
    uint32_t next_id = 0;
    for (int s = 0; s < steps; s++) {
        uint32_t op = rnd(10);
        if (op < 6) {
            hs_msg_type t = kinds[rnd(6)];
            uint64_t view = floor + rnd(12);
            uint32_t id = next_id++;
            bool want = model_insert(&md, view, cost_of(t), id);
            CU_ASSERT_EQUAL(ins(b, t, view, id), want);
        } else if (op < 9) {
            uint64_t view = floor + rnd(12);
            CU_ASSERT_EQUAL(pop_id(b, view), model_pop(&md, view));
        } else {
            floor += rnd(3);
            model_drop_below(&md, floor);
            hs_msg_buffer_drop_below(b, floor);
        }
        CU_ASSERT_EQUAL_FATAL(hs_msg_buffer_bytes(b), md.bytes);
        CU_ASSERT_EQUAL_FATAL(hs_msg_buffer_count(b), (size_t)md.n);
    }
    /* Drain everything: accounting returns to zero. */
    for (uint64_t v = 0; v < floor + 12; v++) {
        uint32_t id;
        while ((id = pop_id(b, v)) != UINT32_MAX) CU_ASSERT_EQUAL(id, model_pop(&md, v));
    }
    CU_ASSERT_EQUAL(md.n, 0);
    CU_ASSERT_EQUAL(hs_msg_buffer_count(b), 0);
    CU_ASSERT_EQUAL(hs_msg_buffer_bytes(b), 0);
    hs_msg_buffer_free(b);
}

static void test_model_and_accounting(void) {
    run_model(0, 500);
    run_model(300, 500);
    run_model(1024, 2000); /* the spec's test capacity */
    run_model(5000, 2000);
    run_model(1 << 20, 500);
}

static const cu_test tests[] = {
    {"per-variant costs", test_costs},
    {"non-progress messages are not inserted", test_non_progress_not_inserted},
    {"FIFO per view", test_fifo_per_view},
    {"pop takes exactly the given view", test_pop_exact_view_only},
    {"drop_below frees and subtracts", test_drop_below},
    {"eviction: highest view, newest first", test_eviction_order},
    {"eviction reaches lower views", test_eviction_into_lower_views},
    {"overloaded/acceptable matrix", test_insert_rule_matrix},
    {"capacity 0", test_capacity_zero},
    {"model check; accounting returns to 0", test_model_and_accounting},
    {NULL, NULL},
};

int main(void) { return cu_run("msg_buffer", tests); }
