/* server/wire/mapping.c - core types -> protobuf-c structs (and the arena they live in, and
 * whole messages packed to bytes). See mapping.h for the contract; the other direction, which
 * validates what peers and clients send, is wire/from_pb.c.
 *
 * Shape of the code: one to_pb function per type, a straight walk over the fields, building
 * zero-copy views of the source value's bytes in the arena.
 */
#include "wire/mapping.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- arena ---- */

#define ARENA_ALIGN _Alignof(max_align_t)
#define ARENA_CHUNK 4096
/* Header size rounded up so the data that follows is aligned for any type. */
#define CHUNK_HDR ((sizeof(hs_pb_chunk) + ARENA_ALIGN - 1) / ARENA_ALIGN * ARENA_ALIGN)

struct hs_pb_chunk {
    hs_pb_chunk *next;
    size_t used, cap; /* bytes of data in use and available after the header */
};

void hs_pb_arena_init(hs_pb_arena *a) {
    a->head = NULL;
}

void hs_pb_arena_free(hs_pb_arena *a) {
    hs_pb_chunk *c = a->head;
    while (c) {
        hs_pb_chunk *next = c->next;
        free(c);
        c = next;
    }
    a->head = NULL;
}

void *hs_pb_arena_alloc(hs_pb_arena *a, size_t n) {
    n = (n + ARENA_ALIGN - 1) / ARENA_ALIGN * ARENA_ALIGN;
    if (n == 0) n = ARENA_ALIGN;
    hs_pb_chunk *c = a->head;
    if (!c || c->cap - c->used < n) {
        /* A request bigger than a chunk gets a chunk of its own, placed behind the head so the
         * head's free space keeps serving small requests. */
        size_t cap = n > ARENA_CHUNK - CHUNK_HDR ? n : ARENA_CHUNK - CHUNK_HDR;
        if (cap > SIZE_MAX - CHUNK_HDR) return NULL;
        hs_pb_chunk *nc = malloc(CHUNK_HDR + cap);
        if (!nc) return NULL;
        nc->used = 0;
        nc->cap = cap;
        if (c && cap == n && c->cap - c->used >= ARENA_ALIGN) {
            nc->next = c->next;
            c->next = nc;
        } else {
            nc->next = c;
            a->head = nc;
        }
        c = nc;
    }
    void *p = (uint8_t *)c + CHUNK_HDR + c->used;
    c->used += n;
    memset(p, 0, n);
    return p;
}

/* Zero-copy view of bytes owned by the source value. */
static ProtobufCBinaryData bin(const void *p, size_t len) {
    ProtobufCBinaryData d = {len, (uint8_t *)p};
    return d;
}

/* An array of n pointers to n structs of `size` bytes each, all from the arena; the structs
 * are not initialised. NULL when n == 0 (protobuf-c accepts NULL for empty repeated fields). */
static void **alloc_ptr_array(hs_pb_arena *a, size_t n, size_t size, void **items) {
    *items = NULL;
    if (n == 0) return NULL;
    void **ptrs = hs_pb_arena_alloc(a, n * sizeof *ptrs);
    uint8_t *block = hs_pb_arena_alloc(a, n * size);
    if (!ptrs || !block) return NULL;
    for (size_t i = 0; i < n; i++) ptrs[i] = block + i * size;
    *items = block;
    return ptrs;
}

/* ---- enums ---- */

Hotstuff__V1__Phase hs_map_phase_to_pb(hs_phase p) {
    return (Hotstuff__V1__Phase)((int)p + 1);
}

hs_status hs_map_phase_from_pb(int v, hs_phase *out) {
    if (v < HOTSTUFF__V1__PHASE__PHASE_GENERIC || v > HOTSTUFF__V1__PHASE__PHASE_DECIDE)
        return HS_ERR_INVALID;
    *out = (hs_phase)(v - 1);
    return HS_OK;
}

/* ---- core -> protobuf ---- */

static Hotstuff__V1__SignatureSlot **sigset_to_pb(hs_pb_arena *a, const hs_sigset *s,
                                                  bool *oom) {
    void *items;
    Hotstuff__V1__SignatureSlot **slots =
        (Hotstuff__V1__SignatureSlot **)alloc_ptr_array(a, s->n, sizeof **slots, &items);
    if (s->n && !slots) {
        *oom = true;
        return NULL;
    }
    for (uint32_t i = 0; i < s->n; i++) {
        hotstuff__v1__signature_slot__init(slots[i]);
        if (s->slots[i].present) slots[i]->signature = bin(s->slots[i].sig.b, HS_SIG_LEN);
    }
    return slots;
}

Hotstuff__V1__PhaseCertificate *hs_map_pc_to_pb(hs_pb_arena *a, const hs_pc *pc) {
    Hotstuff__V1__PhaseCertificate *p = hs_pb_arena_alloc(a, sizeof *p);
    if (!p) return NULL;
    hotstuff__v1__phase_certificate__init(p);
    p->chain_id = pc->chain_id;
    p->view = pc->view;
    p->block = bin(pc->block.b, HS_HASH_LEN);
    p->phase = hs_map_phase_to_pb(pc->phase);
    bool oom = false;
    p->signatures = sigset_to_pb(a, &pc->sigs, &oom);
    p->n_signatures = pc->sigs.n;
    return oom ? NULL : p;
}

Hotstuff__V1__TimeoutCertificate *hs_map_tc_to_pb(hs_pb_arena *a, const hs_tc *tc) {
    Hotstuff__V1__TimeoutCertificate *p = hs_pb_arena_alloc(a, sizeof *p);
    if (!p) return NULL;
    hotstuff__v1__timeout_certificate__init(p);
    p->chain_id = tc->chain_id;
    p->view = tc->view;
    bool oom = false;
    p->signatures = sigset_to_pb(a, &tc->sigs, &oom);
    p->n_signatures = tc->sigs.n;
    return oom ? NULL : p;
}

Hotstuff__V1__Block *hs_map_block_to_pb(hs_pb_arena *a, const hs_block *b) {
    Hotstuff__V1__Block *p = hs_pb_arena_alloc(a, sizeof *p);
    if (!p) return NULL;
    hotstuff__v1__block__init(p);
    p->height = b->height;
    p->hash = bin(b->hash.b, HS_HASH_LEN);
    p->justify = hs_map_pc_to_pb(a, &b->justify);
    p->data_hash = bin(b->data_hash.b, HS_HASH_LEN);
    if (b->data.n) {
        p->data = hs_pb_arena_alloc(a, b->data.n * sizeof *p->data);
        if (!p->data) return NULL;
        for (uint32_t i = 0; i < b->data.n; i++)
            p->data[i] = bin(b->data.items[i].p, b->data.items[i].len);
        p->n_data = b->data.n;
    }
    return p->justify ? p : NULL;
}

Hotstuff__V1__ValidatorSet *hs_map_vs_to_pb(hs_pb_arena *a, const hs_validator_set *vs) {
    Hotstuff__V1__ValidatorSet *p = hs_pb_arena_alloc(a, sizeof *p);
    if (!p) return NULL;
    hotstuff__v1__validator_set__init(p);
    void *items;
    p->validators = (Hotstuff__V1__Validator **)alloc_ptr_array(
        a, vs->n, sizeof(Hotstuff__V1__Validator), &items);
    if (vs->n && !p->validators) return NULL;
    for (uint32_t i = 0; i < vs->n; i++) {
        hotstuff__v1__validator__init(p->validators[i]);
        p->validators[i]->key = bin(vs->v[i].key.b, HS_KEY_LEN);
        p->validators[i]->power = vs->v[i].power;
    }
    p->n_validators = vs->n;
    return p;
}

Hotstuff__V1__ValidatorSetUpdates *hs_map_vs_updates_to_pb(hs_pb_arena *a,
                                                           const hs_vs_updates *u) {
    Hotstuff__V1__ValidatorSetUpdates *p = hs_pb_arena_alloc(a, sizeof *p);
    if (!p) return NULL;
    hotstuff__v1__validator_set_updates__init(p);
    void *items;
    p->inserts = (Hotstuff__V1__Validator **)alloc_ptr_array(
        a, u->n_inserts, sizeof(Hotstuff__V1__Validator), &items);
    if (u->n_inserts && !p->inserts) return NULL;
    for (uint32_t i = 0; i < u->n_inserts; i++) {
        hotstuff__v1__validator__init(p->inserts[i]);
        p->inserts[i]->key = bin(u->inserts[i].key.b, HS_KEY_LEN);
        p->inserts[i]->power = u->inserts[i].power;
    }
    p->n_inserts = u->n_inserts;
    if (u->n_deletes) {
        p->deletes = hs_pb_arena_alloc(a, u->n_deletes * sizeof *p->deletes);
        if (!p->deletes) return NULL;
        for (uint32_t i = 0; i < u->n_deletes; i++)
            p->deletes[i] = bin(u->deletes[i].b, HS_KEY_LEN);
        p->n_deletes = u->n_deletes;
    }
    return p;
}

Hotstuff__V1__AppStateUpdates *hs_map_app_updates_to_pb(hs_pb_arena *a,
                                                        const hs_app_updates *u) {
    Hotstuff__V1__AppStateUpdates *p = hs_pb_arena_alloc(a, sizeof *p);
    if (!p) return NULL;
    hotstuff__v1__app_state_updates__init(p);
    void *items;
    p->inserts = (Hotstuff__V1__KeyValue **)alloc_ptr_array(
        a, u->n_inserts, sizeof(Hotstuff__V1__KeyValue), &items);
    if (u->n_inserts && !p->inserts) return NULL;
    for (uint32_t i = 0; i < u->n_inserts; i++) {
        hotstuff__v1__key_value__init(p->inserts[i]);
        p->inserts[i]->key = bin(u->insert_keys[i].p, u->insert_keys[i].len);
        p->inserts[i]->value = bin(u->insert_values[i].p, u->insert_values[i].len);
    }
    p->n_inserts = u->n_inserts;
    if (u->n_deletes) {
        p->deletes = hs_pb_arena_alloc(a, u->n_deletes * sizeof *p->deletes);
        if (!p->deletes) return NULL;
        for (uint32_t i = 0; i < u->n_deletes; i++)
            p->deletes[i] = bin(u->delete_keys[i].p, u->delete_keys[i].len);
        p->n_deletes = u->n_deletes;
    }
    return p;
}

/* Allocates and initialises one message struct; `init` is its generated __init function. */
#define ARENA_NEW(a, ptr, init)                                                               \
    do {                                                                                      \
        (ptr) = hs_pb_arena_alloc((a), sizeof *(ptr));                                        \
        if (!(ptr)) return NULL;                                                              \
        init(ptr);                                                                            \
    } while (0)

static Hotstuff__V1__Message *sync_response_to_pb(hs_pb_arena *a, Hotstuff__V1__Message *p,
                                                  const hs_sync_response *s) {
    Hotstuff__V1__BlockSyncResponse *r;
    ARENA_NEW(a, r, hotstuff__v1__block_sync_response__init);
    if (s->n_blocks) {
        r->blocks = hs_pb_arena_alloc(a, s->n_blocks * sizeof *r->blocks);
        if (!r->blocks) return NULL;
        for (uint32_t i = 0; i < s->n_blocks; i++) {
            r->blocks[i] = hs_map_block_to_pb(a, &s->blocks[i]);
            if (!r->blocks[i]) return NULL;
        }
        r->n_blocks = s->n_blocks;
    }
    r->highest_pc = hs_map_pc_to_pb(a, &s->highest_pc);
    if (!r->highest_pc) return NULL;
    p->message_case = HOTSTUFF__V1__MESSAGE__MESSAGE_BLOCK_SYNC_RESPONSE;
    p->block_sync_response = r;
    return p;
}

Hotstuff__V1__Message *hs_map_msg_to_pb(hs_pb_arena *a, const hs_msg *m) {
    Hotstuff__V1__Message *p;
    ARENA_NEW(a, p, hotstuff__v1__message__init);
    switch (m->type) {
    case HS_MSG_PROPOSAL: {
        Hotstuff__V1__Proposal *x;
        ARENA_NEW(a, x, hotstuff__v1__proposal__init);
        x->chain_id = m->u.proposal.chain_id;
        x->view = m->u.proposal.view;
        if (!(x->block = hs_map_block_to_pb(a, &m->u.proposal.block))) return NULL;
        p->message_case = HOTSTUFF__V1__MESSAGE__MESSAGE_PROPOSAL;
        p->proposal = x;
        return p;
    }
    case HS_MSG_NUDGE: {
        Hotstuff__V1__Nudge *x;
        ARENA_NEW(a, x, hotstuff__v1__nudge__init);
        x->chain_id = m->u.nudge.chain_id;
        x->view = m->u.nudge.view;
        if (!(x->justify = hs_map_pc_to_pb(a, &m->u.nudge.justify))) return NULL;
        p->message_case = HOTSTUFF__V1__MESSAGE__MESSAGE_NUDGE;
        p->nudge = x;
        return p;
    }
    case HS_MSG_PHASE_VOTE: {
        const hs_phase_vote *v = &m->u.phase_vote;
        Hotstuff__V1__PhaseVote *x;
        ARENA_NEW(a, x, hotstuff__v1__phase_vote__init);
        x->chain_id = v->chain_id;
        x->view = v->view;
        x->block = bin(v->block.b, HS_HASH_LEN);
        x->phase = hs_map_phase_to_pb(v->phase);
        x->signature = bin(v->sig.b, HS_SIG_LEN);
        p->message_case = HOTSTUFF__V1__MESSAGE__MESSAGE_PHASE_VOTE;
        p->phase_vote = x;
        return p;
    }
    case HS_MSG_NEW_VIEW: {
        Hotstuff__V1__NewView *x;
        ARENA_NEW(a, x, hotstuff__v1__new_view__init);
        x->chain_id = m->u.new_view.chain_id;
        x->view = m->u.new_view.view;
        if (!(x->highest_pc = hs_map_pc_to_pb(a, &m->u.new_view.highest_pc))) return NULL;
        p->message_case = HOTSTUFF__V1__MESSAGE__MESSAGE_NEW_VIEW;
        p->new_view = x;
        return p;
    }
    case HS_MSG_TIMEOUT_VOTE: {
        const hs_timeout_vote *v = &m->u.timeout_vote;
        Hotstuff__V1__TimeoutVote *x;
        ARENA_NEW(a, x, hotstuff__v1__timeout_vote__init);
        x->chain_id = v->chain_id;
        x->view = v->view;
        x->signature = bin(v->sig.b, HS_SIG_LEN);
        if (v->has_highest_tc && !(x->highest_tc = hs_map_tc_to_pb(a, &v->highest_tc)))
            return NULL;
        p->message_case = HOTSTUFF__V1__MESSAGE__MESSAGE_TIMEOUT_VOTE;
        p->timeout_vote = x;
        return p;
    }
    case HS_MSG_ADVANCE_VIEW: {
        const hs_advance_view *v = &m->u.advance_view;
        Hotstuff__V1__AdvanceView *x;
        ARENA_NEW(a, x, hotstuff__v1__advance_view__init);
        if (v->is_tc) {
            x->progress_certificate_case =
                HOTSTUFF__V1__ADVANCE_VIEW__PROGRESS_CERTIFICATE_TIMEOUT_CERTIFICATE;
            if (!(x->timeout_certificate = hs_map_tc_to_pb(a, &v->tc))) return NULL;
        } else {
            x->progress_certificate_case =
                HOTSTUFF__V1__ADVANCE_VIEW__PROGRESS_CERTIFICATE_PHASE_CERTIFICATE;
            if (!(x->phase_certificate = hs_map_pc_to_pb(a, &v->pc))) return NULL;
        }
        p->message_case = HOTSTUFF__V1__MESSAGE__MESSAGE_ADVANCE_VIEW;
        p->advance_view = x;
        return p;
    }
    case HS_MSG_ADVERTISE_BLOCK: {
        const hs_advertise_block *v = &m->u.advertise_block;
        Hotstuff__V1__AdvertiseBlock *x;
        ARENA_NEW(a, x, hotstuff__v1__advertise_block__init);
        x->chain_id = v->chain_id;
        x->highest_committed_block_height = v->height;
        x->signature = bin(v->sig.b, HS_SIG_LEN);
        p->message_case = HOTSTUFF__V1__MESSAGE__MESSAGE_ADVERTISE_BLOCK;
        p->advertise_block = x;
        return p;
    }
    case HS_MSG_ADVERTISE_PC: {
        Hotstuff__V1__AdvertisePC *x;
        ARENA_NEW(a, x, hotstuff__v1__advertise_pc__init);
        if (!(x->highest_pc = hs_map_pc_to_pb(a, &m->u.advertise_pc.highest_pc))) return NULL;
        p->message_case = HOTSTUFF__V1__MESSAGE__MESSAGE_ADVERTISE_PC;
        p->advertise_pc = x;
        return p;
    }
    case HS_MSG_SYNC_REQUEST: {
        Hotstuff__V1__BlockSyncRequest *x;
        ARENA_NEW(a, x, hotstuff__v1__block_sync_request__init);
        x->chain_id = m->u.sync_request.chain_id;
        x->start_height = m->u.sync_request.start_height;
        x->limit = m->u.sync_request.limit;
        p->message_case = HOTSTUFF__V1__MESSAGE__MESSAGE_BLOCK_SYNC_REQUEST;
        p->block_sync_request = x;
        return p;
    }
    case HS_MSG_SYNC_RESPONSE:
        return sync_response_to_pb(a, p, &m->u.sync_response);
    default:
        return NULL;
    }
}

/* ---- whole messages as bytes ---- */

hs_status hs_map_msg_pack(const hs_msg *m, uint8_t **out, size_t *out_len) {
    *out = NULL;
    *out_len = 0;
    if (m->type <= HS_MSG_NONE || m->type >= HS_MSG_TYPE_COUNT) return HS_ERR_INVALID;
    hs_pb_arena a;
    hs_pb_arena_init(&a);
    Hotstuff__V1__Message *pb = hs_map_msg_to_pb(&a, m);
    hs_status st = HS_ERR_NOMEM;
    if (pb) {
        size_t n = hotstuff__v1__message__get_packed_size(pb);
        uint8_t *buf = malloc(n ? n : 1);
        if (buf) {
            *out_len = hotstuff__v1__message__pack(pb, buf);
            *out = buf;
            st = HS_OK;
        }
    }
    hs_pb_arena_free(&a);
    return st;
}
