/* server/admin/queries.c - the admin service's reads and single submissions (CQ thread): GetStatus,
 * GetBlock, GetValidatorSet, GetState, SubmitTransaction (and its wait), ListBlocks. */
#include "admin/internal.h"

/* ------------------------------------------------------------------------------------------ */
/* Unary handlers.                                                                            */

void ad_do_status(acall *c) {
    hs_admin *a = c->a;
    hs_kv_reader r;
    if (!ad_snap(a, &r)) {
        ad_finish(c, GRPC_STATUS_UNAVAILABLE, "store snapshot failed");
        return;
    }
    hs_pb_arena ar;
    hs_pb_arena_init(&ar);
    Hotstuff__V1__GetStatusResponse m = HOTSTUFF__V1__GET_STATUS_RESPONSE__INIT;
    hs_replica_stats st;
    ad_node_stats(a, &st);
    m.chain_id = a->cfg.chain_id;
    m.key.data = a->cfg.key.b;
    m.key.len = HS_KEY_LEN;
    m.current_view = st.view;
    m.syncing = st.syncing;
    m.events_dropped = st.events_dropped;
    m.connected_peers = a->node.connected_peers ? a->node.connected_peers(a->node.ctx) : 0;
    hs_validator_set vs = {0};
    m.role = hs_bt_committed_vs(&r, &vs) == HS_OK && hs_vs_contains(&vs, &a->cfg.key)
                 ? HOTSTUFF__V1__ROLE__ROLE_VALIDATOR
                 : HOTSTUFF__V1__ROLE__ROLE_LISTENER;
    hs_vs_free(&vs);
    hs_hash h;
    if (ad_tip_of(&r, &m.committed_height) && hs_bt_highest_committed_block(&r, &h) == HS_OK) {
        m.has_committed = true;
        m.committed_hash.data = h.b;
        m.committed_hash.len = HS_HASH_LEN;
    } else {
        m.committed_height = 0;
    }
    hs_pc hpc = {0}, lpc = {0};
    if (hs_bt_highest_pc(&r, &hpc) == HS_OK) m.highest_pc = hs_map_pc_to_pb(&ar, &hpc);
    if (hs_bt_locked_pc(&r, &lpc) == HS_OK) m.locked_pc = hs_map_pc_to_pb(&ar, &lpc);
    ad_reply_pb(c, &m.base);
    hs_pc_free(&hpc);
    hs_pc_free(&lpc);
    hs_pb_arena_free(&ar);
    ad_snap_done(a, &r);
}

/* Sends (via reply or stream) the committed block at height h; NULL on a read failure. */
static grpc_byte_buffer *block_message(const hs_kv_reader *r, const hs_hash *h, uint64_t tip,
                                       bool list) {
    hs_block b;
    memset(&b, 0, sizeof b);
    if (hs_bt_block(r, h, &b) != HS_OK) return NULL;
    hs_pb_arena ar;
    hs_pb_arena_init(&ar);
    grpc_byte_buffer *bb = NULL;
    Hotstuff__V1__Block *pb = hs_map_block_to_pb(&ar, &b);
    if (pb && list) {
        Hotstuff__V1__ListBlocksResponse m = HOTSTUFF__V1__LIST_BLOCKS_RESPONSE__INIT;
        m.block = pb;
        m.tip_height = tip;
        bb = hs_pb_pack(&m.base);
    } else if (pb) {
        Hotstuff__V1__GetBlockResponse m = HOTSTUFF__V1__GET_BLOCK_RESPONSE__INIT;
        m.block = pb;
        m.tip_height = tip;
        bb = hs_pb_pack(&m.base);
    }
    hs_pb_arena_free(&ar);
    hs_block_free(&b);
    return bb;
}

void ad_do_block(acall *c) {
    hs_admin *a = c->a;
    Hotstuff__V1__GetBlockRequest *q = (Hotstuff__V1__GetBlockRequest *)hs_pb_unpack(
        &hotstuff__v1__get_block_request__descriptor, c->payload);
    if (!q) {
        ad_finish(c, GRPC_STATUS_INVALID_ARGUMENT, "malformed GetBlockRequest");
        return;
    }
    hs_kv_reader r;
    if (!ad_snap(a, &r)) {
        protobuf_c_message_free_unpacked(&q->base, NULL);
        ad_finish(c, GRPC_STATUS_UNAVAILABLE, "store snapshot failed");
        return;
    }
    uint64_t tip = 0;
    bool any = ad_tip_of(&r, &tip);
    hs_hash h;
    bool found = false;
    switch (q->selector_case) {
    case HOTSTUFF__V1__GET_BLOCK_REQUEST__SELECTOR_HEIGHT:
        if (!any) ad_finish(c, GRPC_STATUS_OUT_OF_RANGE, "no block is committed yet");
        else if (q->height > tip)
            ad_finish(c, GRPC_STATUS_OUT_OF_RANGE, "height %llu is above the committed tip %llu",
                      (unsigned long long)q->height, (unsigned long long)tip);
        else if (hs_bt_block_at_height(&r, q->height, &h) != HS_OK)
            ad_finish(c, GRPC_STATUS_NOT_FOUND, "no block at height %llu",
                      (unsigned long long)q->height);
        else found = true;
        break;
    case HOTSTUFF__V1__GET_BLOCK_REQUEST__SELECTOR_HASH:
        if (q->hash.len != HS_HASH_LEN) {
            ad_finish(c, GRPC_STATUS_INVALID_ARGUMENT, "hash: want 32 bytes, got %zu", q->hash.len);
            break;
        }
        memcpy(h.b, q->hash.data, HS_HASH_LEN);
        bool in = false;
        if (hs_bt_contains(&r, &h, &in) != HS_OK || !in)
            ad_finish(c, GRPC_STATUS_NOT_FOUND, "no block with that hash");
        else found = true;
        break;
    default:
        ad_finish(c, GRPC_STATUS_INVALID_ARGUMENT, "set height or hash");
    }
    if (found) {
        grpc_byte_buffer *bb = block_message(&r, &h, tip, false);
        if (bb) ad_finish_with(c, GRPC_STATUS_OK, "", bb);
        else ad_finish(c, GRPC_STATUS_INTERNAL, "reading the block failed");
    }
    ad_snap_done(a, &r);
    protobuf_c_message_free_unpacked(&q->base, NULL);
}

void ad_do_vs(acall *c) {
    hs_admin *a = c->a;
    hs_kv_reader r;
    if (!ad_snap(a, &r)) {
        ad_finish(c, GRPC_STATUS_UNAVAILABLE, "store snapshot failed");
        return;
    }
    hs_validator_set cur = {0}, prev = {0};
    hs_pb_arena ar;
    hs_pb_arena_init(&ar);
    Hotstuff__V1__GetValidatorSetResponse m = HOTSTUFF__V1__GET_VALIDATOR_SET_RESPONSE__INIT;
    hs_status s1 = hs_bt_committed_vs(&r, &cur), s2 = hs_bt_previous_vs(&r, &prev);
    hs_status s3 = hs_bt_vs_update_height(&r, &m.update_height);
    bool decided = false;
    hs_status s4 = hs_bt_vs_update_decided(&r, &decided);
    if (s1 != HS_OK || s2 != HS_OK || (s3 != HS_OK && s3 != HS_NOT_FOUND) || s4 != HS_OK) {
        ad_finish(c, GRPC_STATUS_INTERNAL, "reading the validator sets failed");
    } else {
        m.committed = hs_map_vs_to_pb(&ar, &cur);
        m.previous = hs_map_vs_to_pb(&ar, &prev);
        m.has_update_height = s3 == HS_OK;
        if (s3 != HS_OK) m.update_height = 0;
        m.update_decided = decided;
        ad_reply_pb(c, &m.base);
    }
    hs_vs_free(&cur);
    hs_vs_free(&prev);
    hs_pb_arena_free(&ar);
    ad_snap_done(a, &r);
}

void ad_do_state(acall *c) {
    hs_admin *a = c->a;
    if (!a->node.read_state) {
        ad_finish(c, GRPC_STATUS_UNIMPLEMENTED, "this node has no app state to read");
        return;
    }
    Hotstuff__V1__GetStateRequest *q = (Hotstuff__V1__GetStateRequest *)hs_pb_unpack(
        &hotstuff__v1__get_state_request__descriptor, c->payload);
    if (!q || q->key.len == 0) {
        ad_finish(c, GRPC_STATUS_INVALID_ARGUMENT, q ? "key must not be empty"
                                                  : "malformed GetStateRequest");
        if (q) protobuf_c_message_free_unpacked(&q->base, NULL);
        return;
    }
    hs_kv_reader r;
    if (!ad_snap(a, &r)) {
        protobuf_c_message_free_unpacked(&q->base, NULL);
        ad_finish(c, GRPC_STATUS_UNAVAILABLE, "store snapshot failed");
        return;
    }
    hs_bytes v = {0};
    hs_status s = a->node.read_state(a->node.ctx, &r, q->key.data, q->key.len, &v);
    if (s == HS_OK) {
        Hotstuff__V1__GetStateResponse m = HOTSTUFF__V1__GET_STATE_RESPONSE__INIT;
        m.value.data = v.p;
        m.value.len = v.len;
        (void)ad_tip_of(&r, &m.tip_height);
        ad_reply_pb(c, &m.base);
    } else if (s == HS_NOT_FOUND) {
        ad_finish(c, GRPC_STATUS_NOT_FOUND, "key not in the committed app state");
    } else {
        ad_finish(c, GRPC_STATUS_INTERNAL, "reading app state: %s", hs_status_str(s));
    }
    hs_bytes_free(&v);
    ad_snap_done(a, &r);
    protobuf_c_message_free_unpacked(&q->base, NULL);
}

/* Transaction admission shared by SubmitTransaction and SubmitTransactions. */
int ad_submit_tx(hs_admin *a, const uint8_t *p, size_t len, hs_hash *hash,
                 char reason[256]) {
    reason[0] = 0;
    if (len == 0) {
        snprintf(reason, 256, "transaction must not be empty");
        return GRPC_STATUS_INVALID_ARGUMENT;
    }
    hs_sha256(p, len, hash);
    return a->node.submit(a->node.ctx, p, len, hash, reason);
}

static void reply_committed(acall *c, uint64_t height) {
    Hotstuff__V1__AdminSubmitTransactionResponse m =
        HOTSTUFF__V1__ADMIN_SUBMIT_TRANSACTION_RESPONSE__INIT;
    m.tx_hash.data = c->tx.b;
    m.tx_hash.len = HS_HASH_LEN;
    m.committed = true;
    m.height = height;
    ad_reply_pb(c, &m.base);
}

/* A waiting SubmitTransaction: answered once committed, or at its deadline. */
void ad_check_wait(acall *c) {
    hs_admin *a = c->a;
    if (!c->waiting || c->sc.finished || c->sc.closed) return;
    hs_kv_reader r;
    if (ad_snap(a, &r)) {
        uint64_t h;
        hs_status s = a->node.tx_height(a->node.ctx, &r, &c->tx, &h);
        ad_snap_done(a, &r);
        if (s == HS_OK) {
            c->waiting = false;
            reply_committed(c, h);
            return;
        }
    }
    if (gpr_time_cmp(gpr_now(GPR_CLOCK_MONOTONIC), c->wait_until) >= 0) {
        c->waiting = false;
        ad_finish(c, GRPC_STATUS_DEADLINE_EXCEEDED, "transaction not committed in time");
    }
}

void ad_do_submit(acall *c) {
    hs_admin *a = c->a;
    if (!a->node.submit) {
        ad_finish(c, GRPC_STATUS_UNIMPLEMENTED, "this node takes no transactions");
        return;
    }
    Hotstuff__V1__AdminSubmitTransactionRequest *q =
        (Hotstuff__V1__AdminSubmitTransactionRequest *)hs_pb_unpack(
            &hotstuff__v1__admin_submit_transaction_request__descriptor, c->payload);
    if (!q) {
        ad_finish(c, GRPC_STATUS_INVALID_ARGUMENT, "malformed SubmitTransactionRequest");
        return;
    }
    char reason[256];
    int code = ad_submit_tx(a, q->transaction.data, q->transaction.len, &c->tx, reason);
    bool wait = q->wait_for_commit;
    protobuf_c_message_free_unpacked(&q->base, NULL);
    /* A duplicate may be one already committed or waiting: a waiter still gets its answer. */
    if (code != GRPC_STATUS_OK && !(wait && code == GRPC_STATUS_ALREADY_EXISTS)) {
        ad_finish(c, (grpc_status_code)code, "%s", reason);
        return;
    }
    if (!wait) {
        Hotstuff__V1__AdminSubmitTransactionResponse m =
            HOTSTUFF__V1__ADMIN_SUBMIT_TRANSACTION_RESPONSE__INIT;
        m.tx_hash.data = c->tx.b;
        m.tx_hash.len = HS_HASH_LEN;
        ad_reply_pb(c, &m.base);
        return;
    }
    if (!a->node.tx_height) {
        ad_finish(c, GRPC_STATUS_UNIMPLEMENTED, "this node cannot tell when a transaction commits");
        return;
    }
    /* Wait until the call's deadline, bounded by max_wait_ms. */
    gpr_timespec cap = hs_deadline_in_ms(a->cfg.max_wait_ms);
    gpr_timespec dl = gpr_convert_clock_type(c->deadline, GPR_CLOCK_MONOTONIC);
    c->wait_until = gpr_time_cmp(dl, cap) < 0 ? dl : cap;
    c->waiting = true;
    ad_check_wait(c);
}

/* ------------------------------------------------------------------------------------------ */
/* ListBlocks.                                                                                */

void ad_list_pump(acall *c) {
    hs_admin *a = c->a;
    if (c->sc.finished || c->sc.closed || c->sc.send_busy) return;
    if (c->next_h > c->end_h) {
        ad_finish_with(c, GRPC_STATUS_OK, "", NULL);
        return;
    }
    hs_kv_reader r;
    if (!ad_snap(a, &r)) {
        ad_finish(c, GRPC_STATUS_UNAVAILABLE, "store snapshot failed");
        return;
    }
    hs_hash h;
    uint64_t tip = 0;
    (void)ad_tip_of(&r, &tip);
    grpc_byte_buffer *bb = NULL;
    if (hs_bt_block_at_height(&r, c->next_h, &h) == HS_OK) bb = block_message(&r, &h, tip, true);
    ad_snap_done(a, &r);
    if (!bb) {
        ad_finish(c, GRPC_STATUS_INTERNAL, "reading block %llu failed",
                  (unsigned long long)c->next_h);
        return;
    }
    c->next_h++;
    ad_send_msg(c, bb, c->next_h <= c->end_h);
}

void ad_do_list(acall *c) {
    hs_admin *a = c->a;
    Hotstuff__V1__ListBlocksRequest *q = (Hotstuff__V1__ListBlocksRequest *)hs_pb_unpack(
        &hotstuff__v1__list_blocks_request__descriptor, c->payload);
    if (!q) {
        ad_finish(c, GRPC_STATUS_INVALID_ARGUMENT, "malformed ListBlocksRequest");
        return;
    }
    uint64_t start = q->start_height, end = q->end_height;
    protobuf_c_message_free_unpacked(&q->base, NULL);
    if (end < start) {
        ad_finish(c, GRPC_STATUS_INVALID_ARGUMENT, "end_height %llu is below start_height %llu",
                  (unsigned long long)end, (unsigned long long)start);
        return;
    }
    hs_kv_reader r;
    if (!ad_snap(a, &r)) {
        ad_finish(c, GRPC_STATUS_UNAVAILABLE, "store snapshot failed");
        return;
    }
    uint64_t tip = 0;
    bool any = ad_tip_of(&r, &tip);
    ad_snap_done(a, &r);
    if (!any) {
        ad_finish(c, GRPC_STATUS_OUT_OF_RANGE, "no block is committed yet");
        return;
    }
    if (start > tip) {
        ad_finish(c, GRPC_STATUS_OUT_OF_RANGE, "start_height %llu is above the committed tip %llu",
                  (unsigned long long)start, (unsigned long long)tip);
        return;
    }
    /* Clip to the tip and to one page; the client continues from the last height + 1. */
    if (end > tip) end = tip;
    if (end - start >= a->cfg.list_page) end = start + a->cfg.list_page - 1;
    c->next_h = start;
    c->end_h = end;
    ad_list_pump(c);
}
