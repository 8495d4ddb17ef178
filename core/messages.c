/* messages.c - protocol messages (spec §2.8-2.9): lifecycle, intake accessors, wire form. */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "hotstuff/messages.h"

const char *hs_msg_type_name(hs_msg_type t) {
    static const char *const names[HS_MSG_TYPE_COUNT] = {
        [HS_MSG_NONE] = "None",
        [HS_MSG_PROPOSAL] = "Proposal",
        [HS_MSG_NUDGE] = "Nudge",
        [HS_MSG_PHASE_VOTE] = "PhaseVote",
        [HS_MSG_NEW_VIEW] = "NewView",
        [HS_MSG_TIMEOUT_VOTE] = "TimeoutVote",
        [HS_MSG_ADVANCE_VIEW] = "AdvanceView",
        [HS_MSG_ADVERTISE_BLOCK] = "AdvertiseBlock",
        [HS_MSG_ADVERTISE_PC] = "AdvertisePC",
        [HS_MSG_SYNC_REQUEST] = "BlockSyncRequest",
        [HS_MSG_SYNC_RESPONSE] = "BlockSyncResponse",
    };
    return (unsigned)t < HS_MSG_TYPE_COUNT ? names[t] : "?";
}

static void sync_response_free(hs_sync_response *s) {
    for (uint32_t i = 0; i < s->n_blocks; i++) hs_block_free(&s->blocks[i]);
    free(s->blocks);
    hs_pc_free(&s->highest_pc);
}

void hs_msg_free(hs_msg *m) {
    switch (m->type) {
    case HS_MSG_PROPOSAL: hs_block_free(&m->u.proposal.block); break;
    case HS_MSG_NUDGE: hs_pc_free(&m->u.nudge.justify); break;
    case HS_MSG_NEW_VIEW: hs_pc_free(&m->u.new_view.highest_pc); break;
    case HS_MSG_TIMEOUT_VOTE: hs_tc_free(&m->u.timeout_vote.highest_tc); break;
    case HS_MSG_ADVANCE_VIEW:
        hs_tc_free(&m->u.advance_view.tc);
        hs_pc_free(&m->u.advance_view.pc);
        break;
    case HS_MSG_ADVERTISE_PC: hs_pc_free(&m->u.advertise_pc.highest_pc); break;
    case HS_MSG_SYNC_RESPONSE: sync_response_free(&m->u.sync_response); break;
    default: break; /* plain values */
    }
    memset(m, 0, sizeof *m);
}

static hs_status sync_response_copy(hs_sync_response *dst, const hs_sync_response *src) {
    memset(dst, 0, sizeof *dst);
    if (src->n_blocks) {
        dst->blocks = calloc(src->n_blocks, sizeof *dst->blocks);
        if (!dst->blocks) return HS_ERR_NOMEM;
        dst->n_blocks = src->n_blocks; /* calloc'd blocks are empty: freeing all n is safe */
    }
    hs_status st = HS_OK;
    for (uint32_t i = 0; st == HS_OK && i < src->n_blocks; i++)
        st = hs_block_copy(&dst->blocks[i], &src->blocks[i]);
    if (st == HS_OK) st = hs_pc_copy(&dst->highest_pc, &src->highest_pc);
    if (st != HS_OK) sync_response_free(dst);
    return st;
}

hs_status hs_msg_copy(hs_msg *dst, const hs_msg *src) {
    hs_status st = HS_OK;
    *dst = *src; /* plain fields; owned members are replaced by deep copies below */
    switch (src->type) {
    case HS_MSG_PROPOSAL:
        st = hs_block_copy(&dst->u.proposal.block, &src->u.proposal.block);
        break;
    case HS_MSG_NUDGE: st = hs_pc_copy(&dst->u.nudge.justify, &src->u.nudge.justify); break;
    case HS_MSG_NEW_VIEW:
        st = hs_pc_copy(&dst->u.new_view.highest_pc, &src->u.new_view.highest_pc);
        break;
    case HS_MSG_TIMEOUT_VOTE:
        st = hs_tc_copy(&dst->u.timeout_vote.highest_tc, &src->u.timeout_vote.highest_tc);
        break;
    case HS_MSG_ADVANCE_VIEW:
        memset(&dst->u.advance_view.pc, 0, sizeof dst->u.advance_view.pc);
        st = hs_tc_copy(&dst->u.advance_view.tc, &src->u.advance_view.tc);
        if (st == HS_OK) st = hs_pc_copy(&dst->u.advance_view.pc, &src->u.advance_view.pc);
        break;
    case HS_MSG_ADVERTISE_PC:
        st = hs_pc_copy(&dst->u.advertise_pc.highest_pc, &src->u.advertise_pc.highest_pc);
        break;
    case HS_MSG_SYNC_RESPONSE:
        st = sync_response_copy(&dst->u.sync_response, &src->u.sync_response);
        break;
    default: break;
    }
    /* Each *_copy above leaves its member empty on failure, so freeing dst is safe. */
    if (st != HS_OK) hs_msg_free(dst);
    return st;
}

uint64_t hs_msg_chain_id(const hs_msg *m) {
    switch (m->type) {
    case HS_MSG_PROPOSAL: return m->u.proposal.chain_id;
    case HS_MSG_NUDGE: return m->u.nudge.chain_id;
    case HS_MSG_PHASE_VOTE: return m->u.phase_vote.chain_id;
    case HS_MSG_NEW_VIEW: return m->u.new_view.chain_id;
    case HS_MSG_TIMEOUT_VOTE: return m->u.timeout_vote.chain_id;
    case HS_MSG_ADVANCE_VIEW:
        return m->u.advance_view.is_tc ? m->u.advance_view.tc.chain_id
                                       : m->u.advance_view.pc.chain_id;
    case HS_MSG_ADVERTISE_BLOCK: return m->u.advertise_block.chain_id;
    case HS_MSG_ADVERTISE_PC: return m->u.advertise_pc.highest_pc.chain_id;
    case HS_MSG_SYNC_REQUEST: return m->u.sync_request.chain_id;
    /* A response carries no chain id of its own; its highest PC's is the nearest thing. */
    case HS_MSG_SYNC_RESPONSE: return m->u.sync_response.highest_pc.chain_id;
    default: return 0;
    }
}

bool hs_msg_view(const hs_msg *m, uint64_t *view) {
    switch (m->type) {
    case HS_MSG_PROPOSAL: *view = m->u.proposal.view; return true;
    case HS_MSG_NUDGE: *view = m->u.nudge.view; return true;
    case HS_MSG_PHASE_VOTE: *view = m->u.phase_vote.view; return true;
    case HS_MSG_NEW_VIEW: *view = m->u.new_view.view; return true;
    case HS_MSG_TIMEOUT_VOTE: *view = m->u.timeout_vote.view; return true;
    case HS_MSG_ADVANCE_VIEW: /* spec §2.9: the certificate's view */
        *view = m->u.advance_view.is_tc ? m->u.advance_view.tc.view : m->u.advance_view.pc.view;
        return true;
    default: return false;
    }
}

bool hs_msg_is_hotstuff(const hs_msg *m) {
    return m->type == HS_MSG_PROPOSAL || m->type == HS_MSG_NUDGE ||
           m->type == HS_MSG_PHASE_VOTE || m->type == HS_MSG_NEW_VIEW;
}

bool hs_msg_is_pacemaker(const hs_msg *m) {
    return m->type == HS_MSG_TIMEOUT_VOTE || m->type == HS_MSG_ADVANCE_VIEW;
}

bool hs_msg_is_advertise(const hs_msg *m) {
    return m->type == HS_MSG_ADVERTISE_BLOCK || m->type == HS_MSG_ADVERTISE_PC;
}

hs_status hs_msg_encode(const hs_msg *m, uint8_t **out, size_t *out_len) {
    if (m->type <= HS_MSG_NONE || m->type >= HS_MSG_TYPE_COUNT) return HS_ERR_INVALID;
    hs_buf b;
    hs_buf_init(&b);
    hs_enc_msg(&b, m);
    if (b.oom) {
        hs_buf_free(&b);
        return HS_ERR_NOMEM;
    }
    *out = b.p; /* ownership passes to the caller */
    *out_len = b.len;
    return HS_OK;
}

hs_status hs_msg_decode(const uint8_t *buf, size_t len, const hs_limits *limits, hs_msg *out) {
    hs_rd r;
    hs_rd_init(&r, buf, len);
    if (hs_dec_msg(&r, limits, out) != HS_OK) return HS_ERR_INVALID;
    if (hs_rd_done(&r)) return HS_OK;
    hs_msg_free(out); /* trailing bytes */
    return HS_ERR_INVALID;
}

static void put_le64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

/* spec §2.4: borsh((chain_id, view, block, phase)) */
void hs_phase_vote_bytes(uint64_t chain_id, uint64_t view, const hs_hash *block, hs_phase phase,
                         uint8_t out[HS_VOTE_MSG_LEN]) {
    assert((unsigned)phase < HS_PHASE_COUNT);
    put_le64(out, chain_id);
    put_le64(out + 8, view);
    memcpy(out + 16, block->b, HS_HASH_LEN);
    out[48] = (uint8_t)phase;
}

/* spec §2.6: borsh((chain_id, view)); AdvertiseBlock signs the same layout (§14.21). */
void hs_timeout_vote_bytes(uint64_t chain_id, uint64_t view, uint8_t out[HS_TIMEOUT_MSG_LEN]) {
    put_le64(out, chain_id);
    put_le64(out + 8, view);
}
