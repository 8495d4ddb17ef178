/* server/admin/internal.h - what the files of the admin service share: the method table's
 * indices, the per-call state (acall), subscribers, the hs_admin itself, and the functions one
 * file calls in another (prefix ad_). Not for use outside server/admin/.
 *
 *   calls.c      the call state machine: request, start, send, receive, finish, dispatch of
 *                each method (health and reflection go to net/services.h), SubmitTransactions
 *   queries.c    the unary reads (GetStatus, GetBlock, GetValidatorSet, GetState),
 *                SubmitTransaction (with wait_for_commit) and ListBlocks
 *   subscribe.c  event subscriptions: publish_event's rings, replay from the store, slow
 *                subscribers
 *   admin.c      the loop's callbacks (ticks, readiness, wake-ups, stop), start and stop (its
 *                header comment describes the service)
 */
#ifndef HS_ADMIN_INTERNAL_H
#define HS_ADMIN_INTERNAL_H

#include "admin/admin.h"

#include <assert.h>
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
#include "net/loop.h"
#include "net/rpc.h"
#include "net/scall.h"
#include "net/services.h"
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

/* ------------------------------------------------------------------------------------------ */
/* Types.                                                                                     */

enum tag_kind { T_NEW, T_SEND, T_RECV, T_CLOSE, T_STATUS };

struct acall;
typedef struct tag {
    hs_rpc_tag base; /* first: the loop calls base.done (ad_on_tag) */
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
    hs_scall sc; /* the call and its batches (net/scall.h) */
    gpr_timespec deadline;
    grpc_metadata_array md;
    grpc_call_details details;
    grpc_byte_buffer *payload;
    tag t_new, t_send, t_recv, t_close, t_status;
    bool live;       /* on the live list (accepted, counted in max_calls) */
    struct acall *next, *prev;
    /* ListBlocks */
    uint64_t next_h, end_h;
    /* Subscribe */
    subscriber *sub;
    bool want_commit, has_next_commit, has_target, has_delivered;
    uint64_t next_commit, commit_target, delivered, sending_height;
    uint64_t replay_end; /* heights below it, present at subscription, count as replayed */
    bool sending_commit;
    /* SubmitTransactions */
    uint64_t accepted, rejected;
    char first_err[256];
    /* SubmitTransaction with wait_for_commit */
    bool waiting;
    hs_hash tx;
    gpr_timespec wait_until; /* monotonic */
} acall;

struct hs_admin {
    hs_admin_config cfg;
    hs_admin_node node;
    hs_rpc_loop loop; /* loop.srv: the server and queue */
    void *rm[M_GENERIC];
    hs_health *health;
    hs_reflection *refl;

    /* CQ thread only */
    hs_svc_set svc; /* health and reflection calls (net/services.h) */
    acall *live;    /* accepted calls */
    uint32_t n_live, n_subscribers, n_armed;
    bool has_height;
    uint64_t last_height, last_commit_change_ms;
    uint64_t next_tick_ms;

    /* subscribers */
    pthread_mutex_t sub_mu;
    subscriber *subs;

    /* stats */
    pthread_mutex_t stats_mu;
    hs_admin_stats stats;
};

/* calls.c */
/* Path and payload mode of each registered method, by enum method. */
extern const hs_rpc_method ad_methods[M_GENERIC];
void ad_on_tag(hs_rpc_tag *t, bool ok);
void ad_maybe_free(acall *c);
void ad_finish_with(acall *c, grpc_status_code code, const char *msg, grpc_byte_buffer *bb);
void ad_finish(acall *c, grpc_status_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void ad_cut(acall *c, grpc_status_code code, const char *msg);
void ad_reply_pb(acall *c, const ProtobufCMessage *m);
void ad_send_msg(acall *c, grpc_byte_buffer *bb, bool more);
void ad_arm(hs_admin *a, enum method m);

/* queries.c */
void ad_do_status(acall *c);
void ad_do_block(acall *c);
void ad_do_vs(acall *c);
void ad_do_state(acall *c);
int ad_submit_tx(hs_admin *a, const uint8_t *p, size_t len, hs_hash *hash, char reason[256]);
void ad_check_wait(acall *c);
void ad_do_submit(acall *c);
void ad_list_pump(acall *c);
void ad_do_list(acall *c);

/* subscribe.c */
bool ad_sub_overflowed(hs_admin *a, subscriber *s);
void ad_cut_slow(acall *c);
void ad_sub_pump(acall *c);
void ad_do_subscribe(acall *c);

/* admin.c */
void ad_stat_add(hs_admin *a, uint64_t *field);
bool ad_snap(hs_admin *a, hs_kv_reader *r);
void ad_snap_done(hs_admin *a, hs_kv_reader *r);
void ad_node_stats(hs_admin *a, hs_replica_stats *st);
bool ad_tip_of(const hs_kv_reader *r, uint64_t *tip);
#endif
