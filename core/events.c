/* events.c - the 27 event types of spec §9: names, deep copy/free, and the log lines.
 *
 * An event owns its members exactly like the message structs it embeds, so freeing and copying
 * reuse the per-type functions of types.h. The log line format is fixed by spec §9 and is
 * compared byte for byte by tests, so each variant's line is spelled out below rather than
 * generated from tables.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hotstuff/crypto.h"
#include "hotstuff/events.h"

/* Indexed by hs_event_type; the PascalCase names of spec §9. */
static const char *const event_names[HS_EV_COUNT] = {
    [HS_EV_INSERT_BLOCK] = "InsertBlock",
    [HS_EV_COMMIT_BLOCK] = "CommitBlock",
    [HS_EV_PRUNE_BLOCK] = "PruneBlock",
    [HS_EV_UPDATE_HIGHEST_PC] = "UpdateHighestPC",
    [HS_EV_UPDATE_LOCKED_PC] = "UpdateLockedPC",
    [HS_EV_UPDATE_HIGHEST_TC] = "UpdateHighestTC",
    [HS_EV_UPDATE_VALIDATOR_SET] = "UpdateValidatorSet",
    [HS_EV_PROPOSE] = "Propose",
    [HS_EV_NUDGE] = "Nudge",
    [HS_EV_PHASE_VOTE] = "PhaseVote",
    [HS_EV_NEW_VIEW] = "NewView",
    [HS_EV_TIMEOUT_VOTE] = "TimeoutVote",
    [HS_EV_ADVANCE_VIEW] = "AdvanceView",
    [HS_EV_RECEIVE_PROPOSAL] = "ReceiveProposal",
    [HS_EV_RECEIVE_NUDGE] = "ReceiveNudge",
    [HS_EV_RECEIVE_PHASE_VOTE] = "ReceivePhaseVote",
    [HS_EV_RECEIVE_NEW_VIEW] = "ReceiveNewView",
    [HS_EV_RECEIVE_TIMEOUT_VOTE] = "ReceiveTimeoutVote",
    [HS_EV_RECEIVE_ADVANCE_VIEW] = "ReceiveAdvanceView",
    [HS_EV_START_VIEW] = "StartView",
    [HS_EV_VIEW_TIMEOUT] = "ViewTimeout",
    [HS_EV_COLLECT_PC] = "CollectPC",
    [HS_EV_COLLECT_TC] = "CollectTC",
    [HS_EV_START_SYNC] = "StartSync",
    [HS_EV_END_SYNC] = "EndSync",
    [HS_EV_RECEIVE_SYNC_REQUEST] = "ReceiveSyncRequest",
    [HS_EV_SEND_SYNC_RESPONSE] = "SendSyncResponse",
};

const char *hs_event_type_name(hs_event_type t) {
    /* Cast first: the enum may be unsigned, and callers may pass any int. */
    if ((int)t < 0 || (int)t >= HS_EV_COUNT) return NULL;
    return event_names[t];
}

bool hs_event_type_parse(const char *name, hs_event_type *out) {
    if (!name) return false;
    for (int i = 0; i < HS_EV_COUNT; i++) {
        if (strcmp(name, event_names[i]) == 0) {
            if (out) *out = (hs_event_type)i;
            return true;
        }
    }
    return false;
}

/* ------------------------------------------------------------------------------------------ */
/* Free. Every member is released whatever flags say, since freeing an empty member is a no-op
 * and a flag that lies must not turn into a leak. */

static void proposal_free(hs_proposal *p) { hs_block_free(&p->block); }
static void nudge_free(hs_nudge *n) { hs_pc_free(&n->justify); }
static void new_view_free(hs_new_view *nv) { hs_pc_free(&nv->highest_pc); }
static void timeout_vote_free(hs_timeout_vote *tv) { hs_tc_free(&tv->highest_tc); }

static void advance_view_free(hs_advance_view *av) {
    hs_tc_free(&av->tc);
    hs_pc_free(&av->pc);
}

static void blocks_free(hs_block *blocks, uint32_t n) {
    if (!blocks) return;
    for (uint32_t i = 0; i < n; i++) hs_block_free(&blocks[i]);
    free(blocks);
}

void hs_event_free(hs_event *e) {
    if (!e) return;
    switch (e->type) {
    case HS_EV_INSERT_BLOCK: hs_block_free(&e->u.insert_block.block); break;
    case HS_EV_UPDATE_HIGHEST_PC: hs_pc_free(&e->u.update_highest_pc.highest_pc); break;
    case HS_EV_UPDATE_LOCKED_PC: hs_pc_free(&e->u.update_locked_pc.locked_pc); break;
    case HS_EV_UPDATE_HIGHEST_TC: hs_tc_free(&e->u.update_highest_tc.highest_tc); break;
    case HS_EV_UPDATE_VALIDATOR_SET: hs_vs_updates_free(&e->u.update_validator_set.updates); break;
    case HS_EV_PROPOSE: proposal_free(&e->u.propose.proposal); break;
    case HS_EV_NUDGE: nudge_free(&e->u.nudge.nudge); break;
    case HS_EV_NEW_VIEW: new_view_free(&e->u.new_view.new_view); break;
    case HS_EV_TIMEOUT_VOTE: timeout_vote_free(&e->u.timeout_vote.timeout_vote); break;
    case HS_EV_ADVANCE_VIEW: advance_view_free(&e->u.advance_view.advance_view); break;
    case HS_EV_RECEIVE_PROPOSAL: proposal_free(&e->u.receive_proposal.proposal); break;
    case HS_EV_RECEIVE_NUDGE: nudge_free(&e->u.receive_nudge.nudge); break;
    case HS_EV_RECEIVE_NEW_VIEW: new_view_free(&e->u.receive_new_view.new_view); break;
    case HS_EV_RECEIVE_TIMEOUT_VOTE:
        timeout_vote_free(&e->u.receive_timeout_vote.timeout_vote);
        break;
    case HS_EV_RECEIVE_ADVANCE_VIEW:
        advance_view_free(&e->u.receive_advance_view.advance_view);
        break;
    case HS_EV_COLLECT_PC: hs_pc_free(&e->u.collect_pc.pc); break;
    case HS_EV_COLLECT_TC: hs_tc_free(&e->u.collect_tc.tc); break;
    case HS_EV_SEND_SYNC_RESPONSE:
        blocks_free(e->u.send_sync_response.blocks, e->u.send_sync_response.n_blocks);
        hs_pc_free(&e->u.send_sync_response.highest_pc);
        break;
    /* Plain values: nothing owned. */
    case HS_EV_COMMIT_BLOCK:
    case HS_EV_PRUNE_BLOCK:
    case HS_EV_PHASE_VOTE:
    case HS_EV_RECEIVE_PHASE_VOTE:
    case HS_EV_START_VIEW:
    case HS_EV_VIEW_TIMEOUT:
    case HS_EV_START_SYNC:
    case HS_EV_END_SYNC:
    case HS_EV_RECEIVE_SYNC_REQUEST:
        break;
    }
    memset(e, 0, sizeof *e);
}

/* ------------------------------------------------------------------------------------------ */
/* Copy. Each helper starts from a shallow copy of src (plain fields), then replaces the owned
 * members with deep copies. On failure dst is left holding nothing owned. */

static hs_status proposal_copy(hs_proposal *dst, const hs_proposal *src) {
    *dst = *src;
    memset(&dst->block, 0, sizeof dst->block);
    return hs_block_copy(&dst->block, &src->block);
}

static hs_status nudge_copy(hs_nudge *dst, const hs_nudge *src) {
    *dst = *src;
    memset(&dst->justify, 0, sizeof dst->justify);
    return hs_pc_copy(&dst->justify, &src->justify);
}

static hs_status new_view_copy(hs_new_view *dst, const hs_new_view *src) {
    *dst = *src;
    memset(&dst->highest_pc, 0, sizeof dst->highest_pc);
    return hs_pc_copy(&dst->highest_pc, &src->highest_pc);
}

static hs_status timeout_vote_copy(hs_timeout_vote *dst, const hs_timeout_vote *src) {
    *dst = *src;
    memset(&dst->highest_tc, 0, sizeof dst->highest_tc);
    if (!src->has_highest_tc) return HS_OK;
    return hs_tc_copy(&dst->highest_tc, &src->highest_tc);
}

/* Only the active certificate of the ProgressCertificate is copied. */
static hs_status advance_view_copy(hs_advance_view *dst, const hs_advance_view *src) {
    memset(dst, 0, sizeof *dst);
    dst->is_tc = src->is_tc;
    return src->is_tc ? hs_tc_copy(&dst->tc, &src->tc) : hs_pc_copy(&dst->pc, &src->pc);
}

static hs_status blocks_copy(hs_block **dst, const hs_block *src, uint32_t n) {
    *dst = NULL;
    if (n == 0) return HS_OK;
    if (!src) return HS_ERR_INVALID;
    hs_block *b = calloc(n, sizeof *b);
    if (!b) return HS_ERR_NOMEM;
    for (uint32_t i = 0; i < n; i++) {
        hs_status st = hs_block_copy(&b[i], &src[i]);
        if (st != HS_OK) {
            blocks_free(b, i); /* b[i] was left empty by the failed copy */
            return st;
        }
    }
    *dst = b;
    return HS_OK;
}

static hs_status sync_response_copy(hs_event *dst, const hs_event *src) {
    dst->u.send_sync_response.peer = src->u.send_sync_response.peer;
    dst->u.send_sync_response.n_blocks = src->u.send_sync_response.n_blocks;
    hs_status st = hs_pc_copy(&dst->u.send_sync_response.highest_pc,
                              &src->u.send_sync_response.highest_pc);
    if (st != HS_OK) return st;
    return blocks_copy(&dst->u.send_sync_response.blocks, src->u.send_sync_response.blocks,
                       src->u.send_sync_response.n_blocks);
}

hs_status hs_event_copy(hs_event *dst, const hs_event *src) {
    if (!dst || !src) return HS_ERR_INVALID;
    if ((int)src->type < 0 || (int)src->type >= HS_EV_COUNT) return HS_ERR_INVALID;
    memset(dst, 0, sizeof *dst);
    dst->type = src->type;
    dst->timestamp_ms = src->timestamp_ms;

    hs_status st = HS_OK;
    switch (src->type) {
    case HS_EV_INSERT_BLOCK:
        st = hs_block_copy(&dst->u.insert_block.block, &src->u.insert_block.block);
        break;
    case HS_EV_UPDATE_HIGHEST_PC:
        st = hs_pc_copy(&dst->u.update_highest_pc.highest_pc,
                        &src->u.update_highest_pc.highest_pc);
        break;
    case HS_EV_UPDATE_LOCKED_PC:
        st = hs_pc_copy(&dst->u.update_locked_pc.locked_pc, &src->u.update_locked_pc.locked_pc);
        break;
    case HS_EV_UPDATE_HIGHEST_TC:
        st = hs_tc_copy(&dst->u.update_highest_tc.highest_tc,
                        &src->u.update_highest_tc.highest_tc);
        break;
    case HS_EV_UPDATE_VALIDATOR_SET:
        dst->u.update_validator_set.cause_block = src->u.update_validator_set.cause_block;
        st = hs_vs_updates_copy(&dst->u.update_validator_set.updates,
                                &src->u.update_validator_set.updates);
        break;
    case HS_EV_PROPOSE:
        st = proposal_copy(&dst->u.propose.proposal, &src->u.propose.proposal);
        break;
    case HS_EV_NUDGE: st = nudge_copy(&dst->u.nudge.nudge, &src->u.nudge.nudge); break;
    case HS_EV_NEW_VIEW:
        st = new_view_copy(&dst->u.new_view.new_view, &src->u.new_view.new_view);
        break;
    case HS_EV_TIMEOUT_VOTE:
        st = timeout_vote_copy(&dst->u.timeout_vote.timeout_vote,
                               &src->u.timeout_vote.timeout_vote);
        break;
    case HS_EV_ADVANCE_VIEW:
        st = advance_view_copy(&dst->u.advance_view.advance_view,
                               &src->u.advance_view.advance_view);
        break;
    case HS_EV_RECEIVE_PROPOSAL:
        dst->u.receive_proposal.origin = src->u.receive_proposal.origin;
        st = proposal_copy(&dst->u.receive_proposal.proposal, &src->u.receive_proposal.proposal);
        break;
    case HS_EV_RECEIVE_NUDGE:
        dst->u.receive_nudge.origin = src->u.receive_nudge.origin;
        st = nudge_copy(&dst->u.receive_nudge.nudge, &src->u.receive_nudge.nudge);
        break;
    case HS_EV_RECEIVE_NEW_VIEW:
        dst->u.receive_new_view.origin = src->u.receive_new_view.origin;
        st = new_view_copy(&dst->u.receive_new_view.new_view, &src->u.receive_new_view.new_view);
        break;
    case HS_EV_RECEIVE_TIMEOUT_VOTE:
        dst->u.receive_timeout_vote.origin = src->u.receive_timeout_vote.origin;
        st = timeout_vote_copy(&dst->u.receive_timeout_vote.timeout_vote,
                               &src->u.receive_timeout_vote.timeout_vote);
        break;
    case HS_EV_RECEIVE_ADVANCE_VIEW:
        dst->u.receive_advance_view.origin = src->u.receive_advance_view.origin;
        st = advance_view_copy(&dst->u.receive_advance_view.advance_view,
                               &src->u.receive_advance_view.advance_view);
        break;
    case HS_EV_COLLECT_PC: st = hs_pc_copy(&dst->u.collect_pc.pc, &src->u.collect_pc.pc); break;
    case HS_EV_COLLECT_TC: st = hs_tc_copy(&dst->u.collect_tc.tc, &src->u.collect_tc.tc); break;
    case HS_EV_SEND_SYNC_RESPONSE: st = sync_response_copy(dst, src); break;
    /* Plain values: the union copies as bytes. */
    case HS_EV_COMMIT_BLOCK:
    case HS_EV_PRUNE_BLOCK:
    case HS_EV_PHASE_VOTE:
    case HS_EV_RECEIVE_PHASE_VOTE:
    case HS_EV_START_VIEW:
    case HS_EV_VIEW_TIMEOUT:
    case HS_EV_START_SYNC:
    case HS_EV_END_SYNC:
    case HS_EV_RECEIVE_SYNC_REQUEST:
        dst->u = src->u;
        break;
    }
    if (st != HS_OK) hs_event_free(dst); /* releases whatever part was copied */
    return st;
}

/* ------------------------------------------------------------------------------------------ */
/* Log lines (spec §9). */

/* snprintf-like output that keeps counting past the end of buf. */
typedef struct out {
    char *buf;
    size_t cap;
    size_t len; /* bytes wanted so far, excluding the NUL */
} out;

static void put(out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(out *o, const char *fmt, ...) {
    char *dst = NULL;
    size_t room = 0;
    if (o->len < o->cap) {
        dst = o->buf + o->len;
        room = o->cap - o->len;
    }
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(dst, room, fmt, ap);
    va_end(ap);
    if (n > 0) o->len += (size_t)n;
}

/* ", b64(x)" with x a hash or key: the first 7 chars of its unpadded standard Base64. */
static void put_b64(out *o, const uint8_t *bytes, size_t len) {
    char s[8];
    hs_b64_short(bytes, len, s);
    s[7] = '\0';
    put(o, ", %s", s);
}
#define PUT_B64(o, x) put_b64((o), (x).b, sizeof (x).b)

static void put_u64(out *o, uint64_t v) { put(o, ", %llu", (unsigned long long)v); }
static void put_phase(out *o, hs_phase p) { put(o, ", %s", hs_phase_name(p)); }

/* INFO(progress certificate) of spec §9. */
static void put_info(out *o, const hs_advance_view *av) {
    if (av->is_tc) {
        put(o, ", Timeout Certificate, view: %llu", (unsigned long long)av->tc.view);
        return;
    }
    char s[8];
    hs_b64_short(av->pc.block.b, sizeof av->pc.block.b, s);
    s[7] = '\0';
    put(o, ", Phase Certificate, view: %llu, phase: %s, block: %s, no. of signatures: %u",
        (unsigned long long)av->pc.view, hs_phase_name(av->pc.phase), s,
        (unsigned)hs_sigset_count(&av->pc.sigs));
}

size_t hs_event_format(const hs_event *e, char *buf, size_t cap) {
    out o = {buf, buf ? cap : 0, 0};
    if (o.cap) o.buf[0] = '\0';
    const char *name = e ? hs_event_type_name(e->type) : NULL;
    if (!name) return 0;

    put(&o, "%s, %llu", name, (unsigned long long)(e->timestamp_ms / 1000));
    switch (e->type) {
    case HS_EV_INSERT_BLOCK:
        PUT_B64(&o, e->u.insert_block.block.hash);
        put_u64(&o, e->u.insert_block.block.height);
        break;
    case HS_EV_COMMIT_BLOCK: PUT_B64(&o, e->u.commit_block.block); break;
    case HS_EV_PRUNE_BLOCK: PUT_B64(&o, e->u.prune_block.block); break;
    case HS_EV_UPDATE_HIGHEST_PC: {
        const hs_pc *pc = &e->u.update_highest_pc.highest_pc;
        PUT_B64(&o, pc->block);
        put_u64(&o, pc->view);
        put_phase(&o, pc->phase);
        break;
    }
    case HS_EV_UPDATE_LOCKED_PC: {
        const hs_pc *pc = &e->u.update_locked_pc.locked_pc;
        PUT_B64(&o, pc->block);
        put_u64(&o, pc->view);
        put_phase(&o, pc->phase);
        break;
    }
    case HS_EV_UPDATE_HIGHEST_TC: put_u64(&o, e->u.update_highest_tc.highest_tc.view); break;
    case HS_EV_UPDATE_VALIDATOR_SET: PUT_B64(&o, e->u.update_validator_set.cause_block); break;
    case HS_EV_PROPOSE: {
        const hs_proposal *p = &e->u.propose.proposal;
        PUT_B64(&o, p->block.hash);
        put_u64(&o, p->block.height);
        put_u64(&o, p->view);
        break;
    }
    case HS_EV_NUDGE: {
        const hs_nudge *n = &e->u.nudge.nudge;
        PUT_B64(&o, n->justify.block);
        put_u64(&o, n->view);
        put_phase(&o, n->justify.phase);
        break;
    }
    case HS_EV_PHASE_VOTE: {
        const hs_phase_vote *v = &e->u.phase_vote.vote;
        PUT_B64(&o, v->block);
        put_u64(&o, v->view);
        put_phase(&o, v->phase);
        break;
    }
    case HS_EV_NEW_VIEW: {
        const hs_new_view *nv = &e->u.new_view.new_view;
        PUT_B64(&o, nv->highest_pc.block);
        put_u64(&o, nv->view);
        put_phase(&o, nv->highest_pc.phase);
        break;
    }
    case HS_EV_TIMEOUT_VOTE: put_u64(&o, e->u.timeout_vote.timeout_vote.view); break;
    case HS_EV_ADVANCE_VIEW: put_info(&o, &e->u.advance_view.advance_view); break;
    case HS_EV_RECEIVE_PROPOSAL: {
        const hs_proposal *p = &e->u.receive_proposal.proposal;
        PUT_B64(&o, e->u.receive_proposal.origin);
        PUT_B64(&o, p->block.hash);
        put_u64(&o, p->block.height);
        break;
    }
    case HS_EV_RECEIVE_NUDGE: {
        const hs_nudge *n = &e->u.receive_nudge.nudge;
        PUT_B64(&o, e->u.receive_nudge.origin);
        PUT_B64(&o, n->justify.block);
        put_phase(&o, n->justify.phase);
        break;
    }
    case HS_EV_RECEIVE_PHASE_VOTE: {
        const hs_phase_vote *v = &e->u.receive_phase_vote.vote;
        PUT_B64(&o, e->u.receive_phase_vote.origin);
        PUT_B64(&o, v->block);
        put_phase(&o, v->phase);
        break;
    }
    case HS_EV_RECEIVE_NEW_VIEW: {
        const hs_new_view *nv = &e->u.receive_new_view.new_view;
        PUT_B64(&o, e->u.receive_new_view.origin);
        PUT_B64(&o, nv->highest_pc.block);
        put_u64(&o, nv->view);
        put_phase(&o, nv->highest_pc.phase);
        break;
    }
    case HS_EV_RECEIVE_TIMEOUT_VOTE:
        PUT_B64(&o, e->u.receive_timeout_vote.origin);
        put_u64(&o, e->u.receive_timeout_vote.timeout_vote.view);
        break;
    case HS_EV_RECEIVE_ADVANCE_VIEW:
        PUT_B64(&o, e->u.receive_advance_view.origin);
        put_info(&o, &e->u.receive_advance_view.advance_view);
        break;
    case HS_EV_START_VIEW: put_u64(&o, e->u.start_view.view); break;
    case HS_EV_VIEW_TIMEOUT: put_u64(&o, e->u.view_timeout.view); break;
    case HS_EV_COLLECT_PC:
        PUT_B64(&o, e->u.collect_pc.pc.block);
        put_u64(&o, e->u.collect_pc.pc.view);
        put_phase(&o, e->u.collect_pc.pc.phase);
        break;
    case HS_EV_COLLECT_TC: put_u64(&o, e->u.collect_tc.tc.view); break;
    case HS_EV_START_SYNC: PUT_B64(&o, e->u.start_sync.peer); break;
    case HS_EV_END_SYNC:
        PUT_B64(&o, e->u.end_sync.peer);
        put_u64(&o, e->u.end_sync.blocks_synced);
        break;
    case HS_EV_RECEIVE_SYNC_REQUEST:
        PUT_B64(&o, e->u.receive_sync_request.peer);
        put_u64(&o, e->u.receive_sync_request.start_height);
        put_u64(&o, e->u.receive_sync_request.limit);
        break;
    case HS_EV_SEND_SYNC_RESPONSE:
        PUT_B64(&o, e->u.send_sync_response.peer);
        PUT_B64(&o, e->u.send_sync_response.highest_pc.block);
        put_u64(&o, e->u.send_sync_response.n_blocks);
        break;
    }
    return o.len;
}
