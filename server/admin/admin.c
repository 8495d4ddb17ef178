/* server/admin/admin.c - the Admin service, health and reflection on one completion-queue thread.
 *
 * Shape (after grpc-core.md §5 and §11): one NEXT completion queue polled by one thread that
 * owns every gRPC object. Each method has one outstanding request_call; when a call arrives
 * the request is re-armed and the call becomes an `acall` with embedded tags. Every call
 * starts {SEND_INITIAL_METADATA, RECV_CLOSE_ON_SERVER} so cancellation is always seen; it is
 * freed when its count of started-but-uncompleted batches reaches zero.
 *
 * Work that waits (Watch streams, Subscribe streams, SubmitTransaction with wait_for_commit)
 * is re-examined on every tick (tick_ms) and on every kick. A kick is an empty batch on a
 * never-started call of a lame channel, which posts its tag at once: the only way for another
 * thread (the replica's event bus, in publish_event) to wake a CQ thread in gRPC 1.51.
 *
 * Subscriptions: publish_event formats a compact copy of the event (type, time, spec §9 line,
 * block hash, view) into each matching subscriber's ring under one mutex; it never waits for
 * the CQ thread. The CQ thread sends one message at a time per call. CommitBlock events only
 * move a target height: blocks are sent from the store, from the next height the subscriber
 * needs up to that target, so replay and live delivery join without gap or duplicate, and a
 * CommitBlock the replica's own bus dropped is still delivered.
 *
 * Store reads happen on the CQ thread through snapshots: fine for a memory store and
 * LevelDB's cache at admin request rates; a pool would be the next step if they ever showed.
 */
#include "admin/admin.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>

#include "net/pb.h"
#include "net/reflection.h"
#include "net/rpc.h"
#include "hotstuff/block_tree.h"
#include "hotstuff/crypto.h"
#include "hotstuff/log.h"
#include "hotstuff/v1/admin.pb-c.h"
#include "wire/mapping.h"

#define MODULE "admin"
/* Time open streams get to finish after stop begins, before every call is cancelled. */
#define STOP_GRACE_MS 200
/* Bytes of the spec §9 line kept per queued event (longer lines are truncated). */
#define EV_TEXT_MAX 160

/* ------------------------------------------------------------------------------------------ */
/* Methods.                                                                                   */

enum method {
    M_STATUS,
    M_BLOCK,
    M_LIST,
    M_VS,
    M_STATE,
    M_SUBMIT,
    M_SUBMITS,
    M_SUBSCRIBE,
    M_HCHECK,
    M_HWATCH,
    M_REFL_V1,
    M_REFL_V1ALPHA,
    M_GENERIC, /* anything else: UNIMPLEMENTED */
    M_COUNT
};

/* payload: the request arrives with the call (unary and server-streaming). */
static const hs_rpc_method methods[M_GENERIC] = {
    [M_STATUS] = {"/hotstuff.v1.Admin/GetStatus", true},
    [M_BLOCK] = {"/hotstuff.v1.Admin/GetBlock", true},
    [M_LIST] = {"/hotstuff.v1.Admin/ListBlocks", true},
    [M_VS] = {"/hotstuff.v1.Admin/GetValidatorSet", true},
    [M_STATE] = {"/hotstuff.v1.Admin/GetState", true},
    [M_SUBMIT] = {"/hotstuff.v1.Admin/SubmitTransaction", true},
    [M_SUBMITS] = {"/hotstuff.v1.Admin/SubmitTransactions", false},
    [M_SUBSCRIBE] = {"/hotstuff.v1.Admin/Subscribe", true},
    [M_HCHECK] = {HS_HEALTH_CHECK_METHOD, true},
    [M_HWATCH] = {HS_HEALTH_WATCH_METHOD, true},
    [M_REFL_V1] = {HS_REFLECTION_V1_METHOD, false},
    [M_REFL_V1ALPHA] = {HS_REFLECTION_V1ALPHA_METHOD, false},
};

/* ------------------------------------------------------------------------------------------ */
/* Types.                                                                                     */

enum tag_kind { T_NEW, T_SEND, T_RECV, T_CLOSE, T_STATUS, T_KICK, T_SHUTDOWN };

struct acall;
typedef struct tag {
    enum tag_kind kind;
    struct acall *c;
} tag;

/* A queued event, already reduced to what SubscribeResponse carries. */
typedef struct sub_ev {
    uint8_t type;
    bool has_hash;
    uint64_t ts;
    uint64_t view;
    hs_hash hash;
    char text[EV_TEXT_MAX];
} sub_ev;

/* Shared between publish_event (any thread) and the CQ thread, under hs_admin.sub_mu. */
typedef struct subscriber {
    struct subscriber *next;
    uint32_t mask; /* bit per hs_event_type */
    sub_ev *ring;
    uint32_t cap, head, count;
    bool overflow;
} subscriber;

typedef struct acall {
    hs_admin *a;
    enum method m;
    grpc_call *call;
    gpr_timespec deadline;
    grpc_metadata_array md;
    grpc_call_details details;
    grpc_byte_buffer *payload;
    tag t_new, t_send, t_recv, t_close, t_status;
    int pending;     /* batches started and not completed */
    bool live;       /* on the live list (accepted, counted in max_calls) */
    bool finished;   /* status sent, or the call cancelled by us */
    bool closed;     /* RECV_CLOSE_ON_SERVER completed: nothing more can be sent */
    bool send_busy;
    bool half_closed;
    int cancelled;   /* RECV_CLOSE_ON_SERVER's out-parameter */
    grpc_byte_buffer *send_bb, *recv_bb, *status_bb;
    struct acall *next, *prev;
    /* ListBlocks */
    uint64_t next_h, end_h;
    /* Subscribe */
    subscriber *sub;
    bool want_commit, has_next_commit, has_target, has_delivered;
    uint64_t next_commit, commit_target, delivered, sending_height;
    uint64_t replay_end; /* heights below it, present at subscription, count as replayed */
    bool sending_commit;
    /* Health Watch */
    char svc[HS_HEALTH_MAX_NAME + 1];
    int last_status;
    /* Reflection */
    hs_reflection_stream *rs;
    /* SubmitTransactions */
    uint64_t accepted, rejected;
    char first_err[256];
    /* SubmitTransaction with wait_for_commit */
    bool waiting;
    hs_hash tx;
    gpr_timespec wait_until; /* monotonic */
} acall;

enum phase { PH_RUNNING, PH_DRAINING };

struct hs_admin {
    hs_admin_config cfg;
    hs_admin_node node;
    hs_rpc_server srv;
    void *rm[M_GENERIC];
    pthread_t thread;
    bool thread_started;
    hs_health *health;
    hs_reflection *refl;

    /* CQ thread only */
    enum phase phase;
    acall *live; /* accepted calls */
    uint32_t n_live, n_subscribers, n_armed;
    bool shutdown_done, cancelled_all;
    uint64_t grace_until_ms;
    bool has_height;
    uint64_t last_height, last_commit_change_ms;

    hs_rpc_kick kick;
    tag kick_tag, shutdown_tag;
    atomic_bool stopping;

    /* subscribers */
    pthread_mutex_t sub_mu;
    subscriber *subs;

    /* stats */
    pthread_mutex_t stats_mu;
    hs_admin_stats stats;
};

/* ------------------------------------------------------------------------------------------ */
/* Small helpers.                                                                             */

static void stat_add(hs_admin *a, uint64_t *field) {
    pthread_mutex_lock(&a->stats_mu);
    (*field)++;
    pthread_mutex_unlock(&a->stats_mu);
}

/* A snapshot of the node's store, released by snap_done. */
static bool snap(hs_admin *a, hs_kv_reader *r) {
    return a->node.snapshot(a->node.ctx, r) == HS_OK;
}
static void snap_done(hs_admin *a, hs_kv_reader *r) {
    a->node.release_snapshot(a->node.ctx, r);
}

static void node_stats(hs_admin *a, hs_replica_stats *st) {
    memset(st, 0, sizeof *st);
    if (a->node.stats) a->node.stats(a->node.ctx, st);
}

/* Highest committed height; false when nothing is committed (or on a read error, logged). */
static bool tip_of(const hs_kv_reader *r, uint64_t *tip) {
    hs_status s = hs_bt_highest_committed_height(r, tip);
    if (s != HS_OK && s != HS_NOT_FOUND)
        hs_log(HS_LOG_ERROR, MODULE, "reading the committed height: %s", hs_status_str(s));
    return s == HS_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* Call lifecycle.                                                                            */

static bool start_batch(acall *c, const grpc_op *ops, size_t n, tag *t) {
    grpc_call_error e = grpc_call_start_batch(c->call, ops, n, t, NULL);
    if (e != GRPC_CALL_OK) {
        hs_log(HS_LOG_ERROR, MODULE, "%s: start_batch: error %d",
               c->m < M_GENERIC ? methods[c->m].path : "?", (int)e);
        return false;
    }
    c->pending++;
    return true;
}

static acall *call_new(hs_admin *a, enum method m) {
    acall *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->a = a;
    c->m = m;
    c->last_status = -1;
    tag *tags[] = {&c->t_new, &c->t_send, &c->t_recv, &c->t_close, &c->t_status};
    enum tag_kind kinds[] = {T_NEW, T_SEND, T_RECV, T_CLOSE, T_STATUS};
    for (int i = 0; i < 5; i++) {
        tags[i]->kind = kinds[i];
        tags[i]->c = c;
    }
    grpc_metadata_array_init(&c->md);
    grpc_call_details_init(&c->details);
    return c;
}

static void unsubscribe(hs_admin *a, acall *c) {
    if (!c->sub) return;
    pthread_mutex_lock(&a->sub_mu);
    for (subscriber **p = &a->subs; *p; p = &(*p)->next) {
        if (*p == c->sub) {
            *p = c->sub->next;
            break;
        }
    }
    pthread_mutex_unlock(&a->sub_mu);
    free(c->sub->ring);
    free(c->sub);
    c->sub = NULL;
    a->n_subscribers--;
    pthread_mutex_lock(&a->stats_mu);
    a->stats.subscribers = a->n_subscribers;
    pthread_mutex_unlock(&a->stats_mu);
}

static void call_free(acall *c) {
    hs_admin *a = c->a;
    if (c->live) {
        if (c->prev) c->prev->next = c->next;
        else a->live = c->next;
        if (c->next) c->next->prev = c->prev;
        a->n_live--;
    }
    unsubscribe(a, c);
    hs_reflection_stream_free(c->rs);
    if (c->payload) grpc_byte_buffer_destroy(c->payload);
    if (c->send_bb) grpc_byte_buffer_destroy(c->send_bb);
    if (c->recv_bb) grpc_byte_buffer_destroy(c->recv_bb);
    if (c->status_bb) grpc_byte_buffer_destroy(c->status_bb);
    grpc_metadata_array_destroy(&c->md);
    grpc_call_details_destroy(&c->details);
    if (c->call) grpc_call_unref(c->call);
    free(c);
}

static void maybe_free(acall *c) {
    if (c->pending == 0) call_free(c);
}

/* Ends a call with a status (and an optional last message). At most once; a send in flight
 * finishes first (one SEND_MESSAGE per call at a time), which on_send notices. */
static void finish_with(acall *c, grpc_status_code code, const char *msg, grpc_byte_buffer *bb) {
    if (c->finished || c->closed) {
        if (bb) grpc_byte_buffer_destroy(bb);
        return;
    }
    c->finished = true;
    grpc_slice details = grpc_slice_from_copied_string(msg ? msg : "");
    grpc_op ops[2];
    memset(ops, 0, sizeof ops);
    size_t n = 0;
    if (bb) {
        ops[n].op = GRPC_OP_SEND_MESSAGE;
        ops[n++].data.send_message.send_message = bb;
        c->status_bb = bb;
    }
    ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    ops[n].data.send_status_from_server.status = code;
    ops[n++].data.send_status_from_server.status_details = &details;
    if (!start_batch(c, ops, n, &c->t_status)) grpc_call_cancel(c->call, NULL);
    grpc_slice_unref(details); /* not retained past start_batch (grpc.h) */
}

static void finish(acall *c, grpc_status_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void finish(acall *c, grpc_status_code code, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    finish_with(c, code, msg, NULL);
}

/* Ends a call that may have a send stuck behind flow control (a slow subscriber): the
 * status goes out at once and the pending batches fail. */
static void cut(acall *c, grpc_status_code code, const char *msg) {
    if (c->finished || c->closed) return;
    c->finished = true;
    grpc_call_cancel_with_status(c->call, code, msg, NULL);
}

static void reply_pb(acall *c, const ProtobufCMessage *m) {
    grpc_byte_buffer *bb = hs_pb_pack(m);
    finish_with(c, GRPC_STATUS_OK, "", bb);
}

static void send_msg(acall *c, grpc_byte_buffer *bb, bool more) {
    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_SEND_MESSAGE;
    op.flags = more ? GRPC_WRITE_BUFFER_HINT : 0;
    op.data.send_message.send_message = bb;
    c->send_bb = bb;
    if (start_batch(c, &op, 1, &c->t_send)) c->send_busy = true;
    else {
        grpc_byte_buffer_destroy(bb);
        c->send_bb = NULL;
        cut(c, GRPC_STATUS_INTERNAL, "send failed");
    }
}

static void arm_recv(acall *c) {
    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_RECV_MESSAGE;
    op.data.recv_message.recv_message = &c->recv_bb;
    if (!start_batch(c, &op, 1, &c->t_recv)) cut(c, GRPC_STATUS_INTERNAL, "recv failed");
}

/* ------------------------------------------------------------------------------------------ */
/* Unary handlers.                                                                            */

static void do_status(acall *c) {
    hs_admin *a = c->a;
    hs_kv_reader r;
    if (!snap(a, &r)) {
        finish(c, GRPC_STATUS_UNAVAILABLE, "store snapshot failed");
        return;
    }
    hs_pb_arena ar;
    hs_pb_arena_init(&ar);
    Hotstuff__V1__GetStatusResponse m = HOTSTUFF__V1__GET_STATUS_RESPONSE__INIT;
    hs_replica_stats st;
    node_stats(a, &st);
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
    if (tip_of(&r, &m.committed_height) && hs_bt_highest_committed_block(&r, &h) == HS_OK) {
        m.has_committed = true;
        m.committed_hash.data = h.b;
        m.committed_hash.len = HS_HASH_LEN;
    } else {
        m.committed_height = 0;
    }
    hs_pc hpc = {0}, lpc = {0};
    if (hs_bt_highest_pc(&r, &hpc) == HS_OK) m.highest_pc = hs_map_pc_to_pb(&ar, &hpc);
    if (hs_bt_locked_pc(&r, &lpc) == HS_OK) m.locked_pc = hs_map_pc_to_pb(&ar, &lpc);
    reply_pb(c, &m.base);
    hs_pc_free(&hpc);
    hs_pc_free(&lpc);
    hs_pb_arena_free(&ar);
    snap_done(a, &r);
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

static void do_block(acall *c) {
    hs_admin *a = c->a;
    Hotstuff__V1__GetBlockRequest *q = (Hotstuff__V1__GetBlockRequest *)hs_pb_unpack(
        &hotstuff__v1__get_block_request__descriptor, c->payload);
    if (!q) {
        finish(c, GRPC_STATUS_INVALID_ARGUMENT, "malformed GetBlockRequest");
        return;
    }
    hs_kv_reader r;
    if (!snap(a, &r)) {
        protobuf_c_message_free_unpacked(&q->base, NULL);
        finish(c, GRPC_STATUS_UNAVAILABLE, "store snapshot failed");
        return;
    }
    uint64_t tip = 0;
    bool any = tip_of(&r, &tip);
    hs_hash h;
    bool found = false;
    switch (q->selector_case) {
    case HOTSTUFF__V1__GET_BLOCK_REQUEST__SELECTOR_HEIGHT:
        if (!any) finish(c, GRPC_STATUS_OUT_OF_RANGE, "no block is committed yet");
        else if (q->height > tip)
            finish(c, GRPC_STATUS_OUT_OF_RANGE, "height %llu is above the committed tip %llu",
                   (unsigned long long)q->height, (unsigned long long)tip);
        else if (hs_bt_block_at_height(&r, q->height, &h) != HS_OK)
            finish(c, GRPC_STATUS_NOT_FOUND, "no block at height %llu",
                   (unsigned long long)q->height);
        else found = true;
        break;
    case HOTSTUFF__V1__GET_BLOCK_REQUEST__SELECTOR_HASH:
        if (q->hash.len != HS_HASH_LEN) {
            finish(c, GRPC_STATUS_INVALID_ARGUMENT, "hash: want 32 bytes, got %zu", q->hash.len);
            break;
        }
        memcpy(h.b, q->hash.data, HS_HASH_LEN);
        bool in = false;
        if (hs_bt_contains(&r, &h, &in) != HS_OK || !in)
            finish(c, GRPC_STATUS_NOT_FOUND, "no block with that hash");
        else found = true;
        break;
    default:
        finish(c, GRPC_STATUS_INVALID_ARGUMENT, "set height or hash");
    }
    if (found) {
        grpc_byte_buffer *bb = block_message(&r, &h, tip, false);
        if (bb) finish_with(c, GRPC_STATUS_OK, "", bb);
        else finish(c, GRPC_STATUS_INTERNAL, "reading the block failed");
    }
    snap_done(a, &r);
    protobuf_c_message_free_unpacked(&q->base, NULL);
}

static void do_vs(acall *c) {
    hs_admin *a = c->a;
    hs_kv_reader r;
    if (!snap(a, &r)) {
        finish(c, GRPC_STATUS_UNAVAILABLE, "store snapshot failed");
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
        finish(c, GRPC_STATUS_INTERNAL, "reading the validator sets failed");
    } else {
        m.committed = hs_map_vs_to_pb(&ar, &cur);
        m.previous = hs_map_vs_to_pb(&ar, &prev);
        m.has_update_height = s3 == HS_OK;
        if (s3 != HS_OK) m.update_height = 0;
        m.update_decided = decided;
        reply_pb(c, &m.base);
    }
    hs_vs_free(&cur);
    hs_vs_free(&prev);
    hs_pb_arena_free(&ar);
    snap_done(a, &r);
}

static void do_state(acall *c) {
    hs_admin *a = c->a;
    if (!a->node.read_state) {
        finish(c, GRPC_STATUS_UNIMPLEMENTED, "this node has no app state to read");
        return;
    }
    Hotstuff__V1__GetStateRequest *q = (Hotstuff__V1__GetStateRequest *)hs_pb_unpack(
        &hotstuff__v1__get_state_request__descriptor, c->payload);
    if (!q || q->key.len == 0) {
        finish(c, GRPC_STATUS_INVALID_ARGUMENT, q ? "key must not be empty"
                                                  : "malformed GetStateRequest");
        if (q) protobuf_c_message_free_unpacked(&q->base, NULL);
        return;
    }
    hs_kv_reader r;
    if (!snap(a, &r)) {
        protobuf_c_message_free_unpacked(&q->base, NULL);
        finish(c, GRPC_STATUS_UNAVAILABLE, "store snapshot failed");
        return;
    }
    hs_bytes v = {0};
    hs_status s = a->node.read_state(a->node.ctx, &r, q->key.data, q->key.len, &v);
    if (s == HS_OK) {
        Hotstuff__V1__GetStateResponse m = HOTSTUFF__V1__GET_STATE_RESPONSE__INIT;
        m.value.data = v.p;
        m.value.len = v.len;
        (void)tip_of(&r, &m.tip_height);
        reply_pb(c, &m.base);
    } else if (s == HS_NOT_FOUND) {
        finish(c, GRPC_STATUS_NOT_FOUND, "key not in the committed app state");
    } else {
        finish(c, GRPC_STATUS_INTERNAL, "reading app state: %s", hs_status_str(s));
    }
    hs_bytes_free(&v);
    snap_done(a, &r);
    protobuf_c_message_free_unpacked(&q->base, NULL);
}

/* Transaction admission shared by SubmitTransaction and SubmitTransactions. */
static int submit_tx(hs_admin *a, const uint8_t *p, size_t len, hs_hash *hash,
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
    reply_pb(c, &m.base);
}

/* A waiting SubmitTransaction: answered once committed, or at its deadline. */
static void check_wait(acall *c) {
    hs_admin *a = c->a;
    if (!c->waiting || c->finished || c->closed) return;
    hs_kv_reader r;
    if (snap(a, &r)) {
        uint64_t h;
        hs_status s = a->node.tx_height(a->node.ctx, &r, &c->tx, &h);
        snap_done(a, &r);
        if (s == HS_OK) {
            c->waiting = false;
            reply_committed(c, h);
            return;
        }
    }
    if (gpr_time_cmp(gpr_now(GPR_CLOCK_MONOTONIC), c->wait_until) >= 0) {
        c->waiting = false;
        finish(c, GRPC_STATUS_DEADLINE_EXCEEDED, "transaction not committed in time");
    }
}

static void do_submit(acall *c) {
    hs_admin *a = c->a;
    if (!a->node.submit) {
        finish(c, GRPC_STATUS_UNIMPLEMENTED, "this node takes no transactions");
        return;
    }
    Hotstuff__V1__AdminSubmitTransactionRequest *q =
        (Hotstuff__V1__AdminSubmitTransactionRequest *)hs_pb_unpack(
            &hotstuff__v1__admin_submit_transaction_request__descriptor, c->payload);
    if (!q) {
        finish(c, GRPC_STATUS_INVALID_ARGUMENT, "malformed SubmitTransactionRequest");
        return;
    }
    char reason[256];
    int code = submit_tx(a, q->transaction.data, q->transaction.len, &c->tx, reason);
    bool wait = q->wait_for_commit;
    protobuf_c_message_free_unpacked(&q->base, NULL);
    /* A duplicate may be one already committed or waiting: a waiter still gets its answer. */
    if (code != GRPC_STATUS_OK && !(wait && code == GRPC_STATUS_ALREADY_EXISTS)) {
        finish(c, (grpc_status_code)code, "%s", reason);
        return;
    }
    if (!wait) {
        Hotstuff__V1__AdminSubmitTransactionResponse m =
            HOTSTUFF__V1__ADMIN_SUBMIT_TRANSACTION_RESPONSE__INIT;
        m.tx_hash.data = c->tx.b;
        m.tx_hash.len = HS_HASH_LEN;
        reply_pb(c, &m.base);
        return;
    }
    if (!a->node.tx_height) {
        finish(c, GRPC_STATUS_UNIMPLEMENTED, "this node cannot tell when a transaction commits");
        return;
    }
    /* Wait until the call's deadline, bounded by max_wait_ms. */
    gpr_timespec cap = hs_deadline_in_ms(a->cfg.max_wait_ms);
    gpr_timespec dl = gpr_convert_clock_type(c->deadline, GPR_CLOCK_MONOTONIC);
    c->wait_until = gpr_time_cmp(dl, cap) < 0 ? dl : cap;
    c->waiting = true;
    check_wait(c);
}

/* ------------------------------------------------------------------------------------------ */
/* ListBlocks.                                                                                */

static void list_pump(acall *c) {
    hs_admin *a = c->a;
    if (c->finished || c->closed || c->send_busy) return;
    if (c->next_h > c->end_h) {
        finish_with(c, GRPC_STATUS_OK, "", NULL);
        return;
    }
    hs_kv_reader r;
    if (!snap(a, &r)) {
        finish(c, GRPC_STATUS_UNAVAILABLE, "store snapshot failed");
        return;
    }
    hs_hash h;
    uint64_t tip = 0;
    (void)tip_of(&r, &tip);
    grpc_byte_buffer *bb = NULL;
    if (hs_bt_block_at_height(&r, c->next_h, &h) == HS_OK) bb = block_message(&r, &h, tip, true);
    snap_done(a, &r);
    if (!bb) {
        finish(c, GRPC_STATUS_INTERNAL, "reading block %llu failed",
               (unsigned long long)c->next_h);
        return;
    }
    c->next_h++;
    send_msg(c, bb, c->next_h <= c->end_h);
}

static void do_list(acall *c) {
    hs_admin *a = c->a;
    Hotstuff__V1__ListBlocksRequest *q = (Hotstuff__V1__ListBlocksRequest *)hs_pb_unpack(
        &hotstuff__v1__list_blocks_request__descriptor, c->payload);
    if (!q) {
        finish(c, GRPC_STATUS_INVALID_ARGUMENT, "malformed ListBlocksRequest");
        return;
    }
    uint64_t start = q->start_height, end = q->end_height;
    protobuf_c_message_free_unpacked(&q->base, NULL);
    if (end < start) {
        finish(c, GRPC_STATUS_INVALID_ARGUMENT, "end_height %llu is below start_height %llu",
               (unsigned long long)end, (unsigned long long)start);
        return;
    }
    hs_kv_reader r;
    if (!snap(a, &r)) {
        finish(c, GRPC_STATUS_UNAVAILABLE, "store snapshot failed");
        return;
    }
    uint64_t tip = 0;
    bool any = tip_of(&r, &tip);
    snap_done(a, &r);
    if (!any) {
        finish(c, GRPC_STATUS_OUT_OF_RANGE, "no block is committed yet");
        return;
    }
    if (start > tip) {
        finish(c, GRPC_STATUS_OUT_OF_RANGE, "start_height %llu is above the committed tip %llu",
               (unsigned long long)start, (unsigned long long)tip);
        return;
    }
    /* Clip to the tip and to one page; the client continues from the last height + 1. */
    if (end > tip) end = tip;
    if (end - start >= a->cfg.list_page) end = start + a->cfg.list_page - 1;
    c->next_h = start;
    c->end_h = end;
    list_pump(c);
}

/* ------------------------------------------------------------------------------------------ */
/* Subscribe.                                                                                 */

static void ev_fill(sub_ev *s, const hs_event *e) {
    memset(s, 0, sizeof *s);
    s->type = (uint8_t)e->type;
    s->ts = e->timestamp_ms;
    (void)hs_event_format(e, s->text, sizeof s->text);
    const hs_hash *h = NULL;
    switch (e->type) {
    case HS_EV_INSERT_BLOCK: h = &e->u.insert_block.block.hash; break;
    case HS_EV_COMMIT_BLOCK: h = &e->u.commit_block.block; break;
    case HS_EV_PRUNE_BLOCK: h = &e->u.prune_block.block; break;
    case HS_EV_UPDATE_HIGHEST_PC:
        h = &e->u.update_highest_pc.highest_pc.block;
        s->view = e->u.update_highest_pc.highest_pc.view;
        break;
    case HS_EV_UPDATE_LOCKED_PC:
        h = &e->u.update_locked_pc.locked_pc.block;
        s->view = e->u.update_locked_pc.locked_pc.view;
        break;
    case HS_EV_UPDATE_HIGHEST_TC: s->view = e->u.update_highest_tc.highest_tc.view; break;
    case HS_EV_UPDATE_VALIDATOR_SET: h = &e->u.update_validator_set.cause_block; break;
    case HS_EV_START_VIEW: s->view = e->u.start_view.view; break;
    case HS_EV_VIEW_TIMEOUT: s->view = e->u.view_timeout.view; break;
    case HS_EV_COLLECT_PC:
        h = &e->u.collect_pc.pc.block;
        s->view = e->u.collect_pc.pc.view;
        break;
    case HS_EV_COLLECT_TC: s->view = e->u.collect_tc.tc.view; break;
    default: break;
    }
    if (h) {
        s->has_hash = true;
        s->hash = *h;
    }
}

void hs_admin_publish_event(hs_admin *a, const hs_event *e) {
    if ((unsigned)e->type >= HS_EV_COUNT) return;
    bool wake = false, formatted = false;
    sub_ev ev;
    pthread_mutex_lock(&a->sub_mu);
    for (subscriber *s = a->subs; s; s = s->next) {
        if (!(s->mask & (1u << e->type)) || s->overflow) continue;
        if (s->count == s->cap) {
            /* Full: the subscriber is cut off (by the CQ thread), never skipped silently. */
            s->overflow = true;
            wake = true;
            continue;
        }
        if (!formatted) {
            ev_fill(&ev, e);
            formatted = true;
        }
        s->ring[(s->head + s->count++) % s->cap] = ev;
        wake = true;
    }
    pthread_mutex_unlock(&a->sub_mu);
    if (wake) hs_rpc_wake(&a->kick);
}

static bool sub_pop(hs_admin *a, subscriber *s, sub_ev *out) {
    bool got = false;
    pthread_mutex_lock(&a->sub_mu);
    if (s->count) {
        *out = s->ring[s->head];
        s->head = (s->head + 1) % s->cap;
        s->count--;
        got = true;
    }
    pthread_mutex_unlock(&a->sub_mu);
    return got;
}

static bool sub_overflowed(hs_admin *a, subscriber *s) {
    pthread_mutex_lock(&a->sub_mu);
    bool o = s->overflow;
    pthread_mutex_unlock(&a->sub_mu);
    return o;
}

static void send_event(acall *c, const sub_ev *ev, uint64_t height, bool replayed) {
    Hotstuff__V1__SubscribeResponse m = HOTSTUFF__V1__SUBSCRIBE_RESPONSE__INIT;
    m.type = (Hotstuff__V1__EventType)(ev->type + 1);
    m.timestamp_ms = ev->ts;
    m.text = (char *)ev->text;
    if (ev->has_hash) {
        m.block_hash.data = (uint8_t *)ev->hash.b;
        m.block_hash.len = HS_HASH_LEN;
    }
    m.height = height;
    m.replayed = replayed;
    m.view = ev->view;
    send_msg(c, hs_pb_pack(&m.base), false);
}

/* Sends the committed block at c->next_commit, read from the store. */
static void send_stored_commit(acall *c) {
    hs_admin *a = c->a;
    hs_kv_reader r;
    hs_hash h;
    if (!snap(a, &r)) {
        cut(c, GRPC_STATUS_UNAVAILABLE, "store snapshot failed");
        return;
    }
    hs_status s = hs_bt_block_at_height(&r, c->next_commit, &h);
    snap_done(a, &r);
    if (s != HS_OK) {
        cut(c, GRPC_STATUS_INTERNAL, "reading a committed block failed");
        return;
    }
    hs_event e;
    memset(&e, 0, sizeof e);
    e.type = HS_EV_COMMIT_BLOCK;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    e.timestamp_ms = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
    e.u.commit_block.block = h;
    sub_ev ev;
    ev_fill(&ev, &e);
    c->sending_commit = true;
    c->sending_height = c->next_commit;
    bool replayed = c->next_commit < c->replay_end;
    c->next_commit++;
    send_event(c, &ev, c->sending_height, replayed);
}

static void cut_slow(acall *c) {
    char msg[256];
    if (c->has_delivered)
        snprintf(msg, sizeof msg,
                 "subscriber queue full (%u events): last committed height delivered %llu; "
                 "resume with from_height %llu",
                 c->a->cfg.subscriber_queue, (unsigned long long)c->delivered,
                 (unsigned long long)c->delivered + 1);
    else
        snprintf(msg, sizeof msg,
                 "subscriber queue full (%u events): no committed height delivered",
                 c->a->cfg.subscriber_queue);
    stat_add(c->a, &c->a->stats.subscribers_cut);
    cut(c, GRPC_STATUS_RESOURCE_EXHAUSTED, msg);
}

static void sub_pump(acall *c) {
    hs_admin *a = c->a;
    if (c->finished || c->closed) return;
    if (sub_overflowed(a, c->sub)) {
        cut_slow(c);
        return;
    }
    while (!c->send_busy && !c->finished) {
        /* Committed blocks owed from the store come before newer queued events. */
        if (c->want_commit && c->has_target && c->has_next_commit &&
            c->next_commit <= c->commit_target) {
            send_stored_commit(c);
            return;
        }
        sub_ev ev;
        if (!sub_pop(a, c->sub, &ev)) return;
        if (ev.type != HS_EV_COMMIT_BLOCK) {
            send_event(c, &ev, 0, false);
            return;
        }
        /* A live commit only raises the target; its block goes out in height order. */
        hs_kv_reader r;
        uint64_t h;
        if (!snap(a, &r)) continue;
        hs_status s = hs_bt_block_height(&r, &ev.hash, &h);
        snap_done(a, &r);
        if (s != HS_OK) continue;
        if (!c->has_next_commit) {
            c->has_next_commit = true;
            c->next_commit = h;
        }
        if (!c->has_target || h > c->commit_target) {
            c->has_target = true;
            c->commit_target = h;
        }
    }
}

static void do_subscribe(acall *c) {
    hs_admin *a = c->a;
    Hotstuff__V1__SubscribeRequest *q = (Hotstuff__V1__SubscribeRequest *)hs_pb_unpack(
        &hotstuff__v1__subscribe_request__descriptor, c->payload);
    if (!q) {
        finish(c, GRPC_STATUS_INVALID_ARGUMENT, "malformed SubscribeRequest");
        return;
    }
    uint32_t mask = 0;
    bool bad = false;
    for (size_t i = 0; i < q->n_types; i++) {
        int t = (int)q->types[i];
        if (t < 1 || t > HS_EV_COUNT) bad = true;
        else mask |= 1u << (t - 1);
    }
    if (q->n_types == 0) mask = (1u << HS_EV_COUNT) - 1;
    bool from = q->has_from_height;
    uint64_t from_h = q->from_height;
    protobuf_c_message_free_unpacked(&q->base, NULL);
    if (bad) {
        finish(c, GRPC_STATUS_INVALID_ARGUMENT, "unknown or UNSPECIFIED event type");
        return;
    }
    if (from && !(mask & (1u << HS_EV_COMMIT_BLOCK))) {
        finish(c, GRPC_STATUS_INVALID_ARGUMENT,
               "from_height needs EVENT_TYPE_COMMIT_BLOCK among the types");
        return;
    }
    if (a->n_subscribers >= a->cfg.max_subscribers) {
        stat_add(a, &a->stats.refused_busy);
        finish(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "too many subscribers (limit %u)",
               a->cfg.max_subscribers);
        return;
    }
    subscriber *s = calloc(1, sizeof *s);
    if (s) s->ring = calloc(a->cfg.subscriber_queue, sizeof(sub_ev));
    if (!s || !s->ring) {
        if (s) free(s);
        finish(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    s->mask = mask;
    s->cap = a->cfg.subscriber_queue;
    c->sub = s;
    c->want_commit = (mask & (1u << HS_EV_COMMIT_BLOCK)) != 0;
    a->n_subscribers++;
    pthread_mutex_lock(&a->stats_mu);
    a->stats.subscribers = a->n_subscribers;
    pthread_mutex_unlock(&a->stats_mu);
    /* Register first, then read the tip: every commit after the read is in the queue, every
     * one before it is replayed from the store, and heights below next_commit are skipped. */
    pthread_mutex_lock(&a->sub_mu);
    s->next = a->subs;
    a->subs = s;
    pthread_mutex_unlock(&a->sub_mu);
    if (from) {
        c->has_next_commit = true;
        c->next_commit = from_h;
        hs_kv_reader r;
        uint64_t tip;
        if (snap(a, &r)) {
            if (tip_of(&r, &tip) && tip >= from_h) {
                c->has_target = true;
                c->commit_target = tip;
                c->replay_end = tip + 1;
            }
            snap_done(a, &r);
        }
    }
    sub_pump(c);
}

/* ------------------------------------------------------------------------------------------ */
/* Health and reflection.                                                                     */

static void watch_pump(acall *c) {
    if (c->finished || c->closed || c->send_busy) return;
    int st;
    if (!hs_health_get(c->a->health, c->svc, &st)) st = HS_HEALTH_SERVICE_UNKNOWN;
    if (st == c->last_status) return;
    c->last_status = st;
    send_msg(c, hs_health_response(st), false);
}

static void do_watch(acall *c) {
    if (!hs_health_parse_request(c->payload, c->svc)) {
        finish(c, GRPC_STATUS_INVALID_ARGUMENT, "malformed HealthCheckRequest");
        return;
    }
    watch_pump(c);
}

static void do_check(acall *c) {
    grpc_byte_buffer *bb;
    const char *details;
    grpc_status_code code = hs_health_check_reply(c->a->health, c->payload, &bb, &details);
    finish_with(c, code, details, bb);
}

static void refl_on_recv(acall *c, grpc_byte_buffer *bb) {
    grpc_byte_buffer *out = hs_reflection_answer(c->a->refl, c->rs, bb);
    if (!out) {
        finish(c, GRPC_STATUS_INVALID_ARGUMENT, "malformed ServerReflectionRequest");
        return;
    }
    send_msg(c, out, false); /* the next request is read once this answer is sent */
}

/* ------------------------------------------------------------------------------------------ */
/* SubmitTransactions.                                                                        */

static void submits_on_recv(acall *c, grpc_byte_buffer *bb) {
    Hotstuff__V1__SubmitTransactionsRequest *q = (Hotstuff__V1__SubmitTransactionsRequest *)
        hs_pb_unpack(&hotstuff__v1__submit_transactions_request__descriptor, bb);
    if (!q) {
        finish(c, GRPC_STATUS_INVALID_ARGUMENT, "malformed SubmitTransactionsRequest");
        return;
    }
    /* `transaction` first (an empty one is a rejection only when the message carries nothing
     * else, so a batch may leave it unset), then the batch in order. */
    size_t n = q->n_transactions;
    bool single = q->transaction.len > 0 || n == 0;
    for (size_t i = single ? 0 : 1; i <= n; i++) {
        const ProtobufCBinaryData *tx = i == 0 ? &q->transaction : &q->transactions[i - 1];
        char reason[256];
        hs_hash h;
        int code = submit_tx(c->a, tx->data, tx->len, &h, reason);
        if (code == GRPC_STATUS_OK) c->accepted++;
        else if (c->rejected++ == 0) snprintf(c->first_err, sizeof c->first_err, "%s", reason);
    }
    protobuf_c_message_free_unpacked(&q->base, NULL);
    arm_recv(c);
}

static void submits_done(acall *c) {
    Hotstuff__V1__SubmitTransactionsResponse m = HOTSTUFF__V1__SUBMIT_TRANSACTIONS_RESPONSE__INIT;
    m.accepted = c->accepted;
    m.rejected = c->rejected;
    m.first_error = c->first_err;
    reply_pb(c, &m.base);
}

/* ------------------------------------------------------------------------------------------ */
/* Dispatch.                                                                                  */

static void arm(hs_admin *a, enum method m);

static void start_call(acall *c) {
    hs_admin *a = c->a;
    grpc_op ops[2];
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[1].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    ops[1].data.recv_close_on_server.cancelled = &c->cancelled;
    if (!start_batch(c, ops, 2, &c->t_close)) {
        grpc_call_cancel(c->call, NULL);
        maybe_free(c);
        return;
    }
    c->live = true;
    c->next = a->live;
    if (a->live) a->live->prev = c;
    a->live = c;
    a->n_live++;
    if (a->n_live > a->cfg.max_calls) {
        stat_add(a, &a->stats.refused_busy);
        finish(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "too many calls in progress (limit %u)",
               a->cfg.max_calls);
        return;
    }
    if (a->phase != PH_RUNNING) {
        finish(c, GRPC_STATUS_UNAVAILABLE, "shutting down");
        return;
    }
    stat_add(a, &a->stats.calls);
    switch (c->m) {
    case M_STATUS: do_status(c); break;
    case M_BLOCK: do_block(c); break;
    case M_LIST: do_list(c); break;
    case M_VS: do_vs(c); break;
    case M_STATE: do_state(c); break;
    case M_SUBMIT: do_submit(c); break;
    case M_SUBSCRIBE: do_subscribe(c); break;
    case M_HCHECK: do_check(c); break;
    case M_HWATCH: do_watch(c); break;
    case M_SUBMITS:
        if (!a->node.submit) finish(c, GRPC_STATUS_UNIMPLEMENTED, "no transactions here");
        else arm_recv(c);
        break;
    case M_REFL_V1:
    case M_REFL_V1ALPHA:
        c->rs = hs_reflection_stream_new(a->refl);
        if (!c->rs) finish(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
        else arm_recv(c);
        break;
    default: {
        char *method = grpc_slice_to_c_string(c->details.method);
        finish(c, GRPC_STATUS_UNIMPLEMENTED, "method %.200s not implemented", method);
        gpr_free(method);
    }
    }
}

static void on_new(acall *c, bool ok) {
    hs_admin *a = c->a;
    c->pending--;
    a->n_armed--;
    if (!ok) { /* the server is shutting down */
        call_free(c);
        return;
    }
    arm(a, c->m);
    start_call(c);
}

static void on_send(acall *c, bool ok) {
    c->pending--;
    c->send_busy = false;
    if (c->send_bb) {
        grpc_byte_buffer_destroy(c->send_bb);
        c->send_bb = NULL;
    }
    if (ok && c->sending_commit) {
        c->has_delivered = true;
        c->delivered = c->sending_height;
    }
    c->sending_commit = false;
    if (ok && !c->finished && !c->closed) {
        switch (c->m) {
        case M_LIST: list_pump(c); break;
        case M_SUBSCRIBE: sub_pump(c); break;
        case M_HWATCH: watch_pump(c); break;
        case M_REFL_V1:
        case M_REFL_V1ALPHA:
            if (c->half_closed) finish_with(c, GRPC_STATUS_OK, "", NULL);
            else arm_recv(c);
            break;
        default: break;
        }
    }
    maybe_free(c);
}

static void on_recv(acall *c, bool ok) {
    c->pending--;
    grpc_byte_buffer *bb = c->recv_bb;
    c->recv_bb = NULL;
    if (!ok || !bb) {
        /* Half-close, or a cancelled call: RECV_CLOSE_ON_SERVER tells them apart. */
        if (!c->closed && !grpc_call_failed_before_recv_message(c->call) && ok) {
            c->half_closed = true;
            if (c->m == M_SUBMITS) submits_done(c);
            else if (!c->send_busy) finish_with(c, GRPC_STATUS_OK, "", NULL);
        }
    } else if (!c->finished && !c->closed) {
        if (c->m == M_SUBMITS) submits_on_recv(c, bb);
        else refl_on_recv(c, bb);
    }
    if (bb) grpc_byte_buffer_destroy(bb);
    maybe_free(c);
}

static void arm(hs_admin *a, enum method m) {
    if (a->phase != PH_RUNNING) return;
    acall *c = call_new(a, m);
    if (!c) {
        hs_log(HS_LOG_ERROR, MODULE, "out of memory arming %d", (int)m);
        return;
    }
    grpc_call_error e;
    if (m == M_GENERIC)
        e = grpc_server_request_call(a->srv.server, &c->call, &c->details, &c->md, a->srv.cq, a->srv.cq,
                                     &c->t_new);
    else
        e = grpc_server_request_registered_call(a->srv.server, a->rm[m], &c->call, &c->deadline,
                                                &c->md, methods[m].payload ? &c->payload : NULL,
                                                a->srv.cq, a->srv.cq, &c->t_new);
    if (e != GRPC_CALL_OK) {
        hs_log(HS_LOG_ERROR, MODULE, "request_call(%d): error %d", (int)m, (int)e);
        call_free(c);
        return;
    }
    c->pending = 1;
    a->n_armed++;
}

/* ------------------------------------------------------------------------------------------ */
/* The loop.                                                                                  */

/* Readiness: not syncing, and the committed height moved recently. */
static void update_ready(hs_admin *a) {
    if (a->phase != PH_RUNNING) return;
    hs_replica_stats st;
    node_stats(a, &st);
    uint64_t now = hs_mono_ms(), h = 0;
    hs_kv_reader r;
    if (snap(a, &r)) {
        if (tip_of(&r, &h) && (!a->has_height || h != a->last_height)) {
            a->has_height = true;
            a->last_height = h;
            a->last_commit_change_ms = now;
        }
        snap_done(a, &r);
    }
    bool ready = !st.syncing && !st.halted &&
                 now - a->last_commit_change_ms <= a->cfg.ready_max_commit_age_ms;
    hs_health_set(a->health, HS_ADMIN_READY_SERVICE,
                  ready ? HS_HEALTH_SERVING : HS_HEALTH_NOT_SERVING);
}

/* Re-examines everything that waits on time, health or events. */
static void tick(hs_admin *a) {
    update_ready(a);
    acall *next;
    for (acall *c = a->live; c; c = next) {
        next = c->next; /* nothing below frees c: frees happen on completions only */
        switch (c->m) {
        case M_HWATCH: watch_pump(c); break;
        case M_SUBSCRIBE:
            if (c->sub && !c->finished && !c->closed) {
                if (sub_overflowed(a, c->sub)) cut_slow(c);
                else if (!c->send_busy) sub_pump(c);
            }
            break;
        case M_SUBMIT: check_wait(c); break;
        default: break;
        }
    }
}

/* A kick means new events: only subscribers have anything to do (the rest waits for the
 * tick, so a busy event stream costs no store reads beyond the events themselves). */
static void pump_subscribers(hs_admin *a) {
    for (acall *c = a->live; c; c = c->next) {
        if (c->m != M_SUBSCRIBE || !c->sub || c->finished || c->closed) continue;
        if (sub_overflowed(a, c->sub)) cut_slow(c);
        else if (!c->send_busy) sub_pump(c);
    }
}

static void begin_stop(hs_admin *a) {
    a->phase = PH_DRAINING;
    hs_health_shutdown(a->health);
    tick(a); /* watchers hear NOT_SERVING while they can */
    grpc_server_shutdown_and_notify(a->srv.server, a->srv.cq, &a->shutdown_tag);
    a->grace_until_ms = hs_mono_ms() + STOP_GRACE_MS;
}

static void dispatch(hs_admin *a, tag *t, bool ok) {
    acall *c = t->c;
    switch (t->kind) {
    case T_NEW: on_new(c, ok); break;
    case T_SEND: on_send(c, ok); break;
    case T_RECV: on_recv(c, ok); break;
    case T_CLOSE:
        c->pending--;
        c->closed = true;
        c->waiting = false;
        maybe_free(c);
        break;
    case T_STATUS:
        c->pending--;
        maybe_free(c);
        break;
    case T_KICK:
        hs_rpc_kick_taken(&a->kick);
        pump_subscribers(a);
        break;
    case T_SHUTDOWN: a->shutdown_done = true; break;
    }
}

static void *cq_thread(void *arg) {
    hs_admin *a = arg;
    uint64_t next_tick = hs_mono_ms() + a->cfg.tick_ms;
    for (;;) {
        if (a->phase == PH_RUNNING && atomic_load(&a->stopping)) begin_stop(a);
        if (a->phase == PH_DRAINING) {
            if (!a->cancelled_all && hs_mono_ms() >= a->grace_until_ms) {
                grpc_server_cancel_all_calls(a->srv.server);
                a->cancelled_all = true;
            }
            if (a->shutdown_done && a->n_live == 0 && a->n_armed == 0 &&
                hs_rpc_kick_close(&a->kick))
                break; /* (a kick still queued is waited for: its event is on the way) */
        }
        uint64_t now = hs_mono_ms();
        if (now >= next_tick) {
            tick(a);
            next_tick = now + a->cfg.tick_ms;
        }
        now = hs_mono_ms();
        uint64_t wait = next_tick > now ? next_tick - now : 0;
        grpc_event ev = grpc_completion_queue_next(a->srv.cq, hs_deadline_in_ms(wait), NULL);
        if (ev.type == GRPC_QUEUE_TIMEOUT) continue;
        if (ev.type == GRPC_QUEUE_SHUTDOWN) break;
        dispatch(a, ev.tag, ev.success != 0);
    }
    return NULL; /* hs_rpc_server_close drains the queue */
}

/* ------------------------------------------------------------------------------------------ */
/* Public API.                                                                                */

void hs_admin_config_defaults(hs_admin_config *c) {
    memset(c, 0, sizeof *c);
    snprintf(c->listen_address, sizeof c->listen_address, "127.0.0.1:0");
    c->max_recv_message_bytes = 1u << 20;
    c->max_send_message_bytes = 64u << 20;
    c->max_calls = 256;
    c->max_concurrent_streams = 100;
    c->max_subscribers = 64;
    c->subscriber_queue = 1024;
    c->list_page = 100;
    c->max_wait_ms = 60000;
    c->ready_max_commit_age_ms = 10000;
    c->tick_ms = 50;
}

static const char *const served[] = {HS_ADMIN_SERVICE, HS_HEALTH_SERVICE,
                                     HS_REFLECTION_V1_SERVICE, HS_REFLECTION_V1ALPHA_SERVICE};

static void admin_free(hs_admin *a) {
    hs_reflection_free(a->refl);
    hs_health_free(a->health);
    pthread_mutex_destroy(&a->sub_mu);
    pthread_mutex_destroy(&a->stats_mu);
    free(a);
}

static bool config_ok(const hs_admin_config *c, const hs_admin_node *n, char *err,
                      size_t errlen) {
    const char *bad = NULL;
    if (!n || !n->snapshot || !n->release_snapshot) bad = "node.snapshot is required";
    else if (n->tx_height && !n->submit) bad = "node.tx_height without node.submit";
    else if (!c->max_calls) bad = "max_calls must be positive";
    else if (!c->max_subscribers || !c->subscriber_queue) bad = "subscriber limits must be positive";
    else if (!c->list_page) bad = "list_page must be positive";
    else if (!c->tick_ms) bad = "tick_ms must be positive";
    else if (!c->max_recv_message_bytes || c->max_recv_message_bytes > INT32_MAX ||
             !c->max_send_message_bytes || c->max_send_message_bytes > INT32_MAX)
        bad = "message size limits must be in 1..2^31-1";
    if (bad) snprintf(err, errlen, "admin: %s", bad);
    return bad == NULL;
}

hs_status hs_admin_start(const hs_admin_config *cfg, const hs_admin_node *node,
                         hs_admin **out, char *err, size_t errlen) {
    *out = NULL;
    if (!config_ok(cfg, node, err, errlen)) return HS_ERR_INVALID;
    hs_admin *a = calloc(1, sizeof *a);
    if (!a) return HS_ERR_NOMEM;
    a->cfg = *cfg;
    a->node = *node;
    pthread_mutex_init(&a->sub_mu, NULL);
    pthread_mutex_init(&a->stats_mu, NULL);
    a->kick_tag.kind = T_KICK;
    a->shutdown_tag.kind = T_SHUTDOWN;
    a->health = hs_health_new();
    a->refl = hs_reflection_new(hs_descriptor_set, hs_descriptor_set_len, served,
                                sizeof served / sizeof served[0]);
    if (!a->health || !a->refl) {
        snprintf(err, errlen, "admin: out of memory (or a bad embedded descriptor set)");
        admin_free(a);
        return HS_ERR_NOMEM;
    }
    grpc_arg args[] = {
        {GRPC_ARG_INTEGER, GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH,
         {.integer = (int)cfg->max_recv_message_bytes}},
        {GRPC_ARG_INTEGER, GRPC_ARG_MAX_SEND_MESSAGE_LENGTH,
         {.integer = (int)cfg->max_send_message_bytes}},
        {GRPC_ARG_INTEGER, GRPC_ARG_MAX_CONCURRENT_STREAMS,
         {.integer = (int)cfg->max_concurrent_streams}},
    };
    grpc_channel_args cargs = {sizeof args / sizeof args[0], args};
    hs_status st = hs_rpc_server_open(&a->srv, cfg->listen_address, &cargs, methods, M_GENERIC,
                                      a->rm, "admin", err, errlen);
    if (st != HS_OK) {
        admin_free(a);
        return st;
    }
    if (!hs_rpc_kick_init(&a->kick, a->srv.cq, &a->kick_tag)) {
        snprintf(err, errlen, "admin: cannot create the wake-up call");
        atomic_store(&a->stopping, true);
        cq_thread(a);
        hs_rpc_kick_destroy(&a->kick);
        hs_rpc_server_close(&a->srv);
        admin_free(a);
        return HS_ERR_STATE;
    }
    const char *names[] = {"", HS_ADMIN_SERVICE, HS_HEALTH_SERVICE, HS_REFLECTION_V1_SERVICE,
                           HS_REFLECTION_V1ALPHA_SERVICE};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        hs_health_set(a->health, names[i], HS_HEALTH_SERVING);
    a->last_commit_change_ms = hs_mono_ms();
    update_ready(a);
    for (int m = 0; m < M_COUNT; m++) arm(a, (enum method)m);
    if (pthread_create(&a->thread, NULL, cq_thread, a) != 0) {
        /* Run the loop's stop path inline: nothing else has touched the queue. */
        atomic_store(&a->stopping, true);
        cq_thread(a);
        hs_rpc_kick_destroy(&a->kick);
        hs_rpc_server_close(&a->srv);
        admin_free(a);
        snprintf(err, errlen, "admin: cannot start a thread");
        return HS_ERR_NOMEM;
    }
    a->thread_started = true;
    *out = a;
    return HS_OK;
}

int hs_admin_port(const hs_admin *a) {
    return a->srv.port;
}

hs_health *hs_admin_health(hs_admin *a) {
    return a->health;
}

void hs_admin_get_stats(hs_admin *a, hs_admin_stats *out) {
    pthread_mutex_lock(&a->stats_mu);
    *out = a->stats;
    pthread_mutex_unlock(&a->stats_mu);
}

void hs_admin_stop(hs_admin *a) {
    if (!a) return;
    atomic_store(&a->stopping, true);
    hs_rpc_wake(&a->kick);
    pthread_join(a->thread, NULL);
    hs_rpc_kick_destroy(&a->kick);
    hs_rpc_server_close(&a->srv);
    admin_free(a);
}
