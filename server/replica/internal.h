/* server/replica/internal.h - what the files of the replica transport share: the state of a
 * hs_transport, its peers, streams, calls and queues, and the functions one file calls in
 * another (prefix tp_). Not for use outside server/replica/.
 *
 *   queue.c      encoded frames (blobs) and the bounded queues with the drop policy
 *   network.c    the Network interface: inbox, outboxes, gossip, the tx handler, the kick
 *   stream.c     Connect streams: lifecycle, handshake, sending and receiving, dialing
 *   service.c    the port's other calls: acceptors, SubmitTransaction, health, reflection
 *   transport.c  the CQ thread, timers, the stop sequence, start and stop (its header comment
 *                describes the whole transport)
 *
 * Threads and locks: as transport.c's header comment says; every field below is marked with
 * who may touch it.
 */
#ifndef HS_REPLICA_INTERNAL_H
#define HS_REPLICA_INTERNAL_H

#include "replica/transport.h"

#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/support/alloc.h>
#include <grpc/support/log.h>
#include <grpc/support/time.h>
#include <sodium.h>

#include "net/health.h"
#include "net/loop.h"
#include "net/pb.h"
#include "net/reflection.h"
#include "net/rpc.h"
#include "net/services.h"
#include "hotstuff/crypto.h"
#include "hotstuff/log.h"
#include "wire/mapping.h"

#define MODULE "transport"
#define PROTOCOL_VERSION 1
#define CHALLENGE_LEN 32
#define HANDSHAKE_DOMAIN "hotstuff-c/v1/handshake"
#define HANDSHAKE_DOMAIN_LEN 23
/* domain || chain id || 2 challenges || 2 keys || role */
#define TRANSCRIPT_LEN (HANDSHAKE_DOMAIN_LEN + 8 + 2 * CHALLENGE_LEN + 2 * HS_KEY_LEN + 1)
#define ROLE_DIALER 0
#define ROLE_ACCEPTOR 1

#define METHOD_CONNECT "/hotstuff.v1.Replica/Connect"
#define METHOD_SUBMIT "/hotstuff.v1.Replica/SubmitTransaction"
#define SERVICE_REPLICA "hotstuff.v1.Replica"

#define STOP_GRACE_MS 500   /* open streams may flush their outboxes this long at stop */
#define MAX_PEERS 65536     /* sanity bound on the configured peer list */
#define MAX_CONCURRENT_STREAMS 100
#define HANDSHAKING_SLACK 16 /* inbound streams in handshake: 2 per peer + this */
#define STABLE_MS 10000      /* a stream up this long resets its peer's reconnect backoff */
#define GOSSIP_BATCH_BYTES (256 * 1024) /* a gossip frame carries at most this much */

/* ---- frames and queues (queue.c) ---- */

typedef struct blob {
    atomic_uint refs;
    uint32_t len;
    uint8_t data[];
} blob;

enum rank { RANK_ADVERTISE, RANK_TX, RANK_PROGRESS, RANK_SYNC_REQUEST, RANK_SYNC_RESPONSE };

typedef struct qent {
    void *item; /* blob* in outboxes, inbox_item* in the inbox */
    uint64_t view;
    uint64_t seq; /* arrival order */
    uint8_t rank;
} qent;

/* A ring of at most cap entries. */
typedef struct evq {
    qent *e;
    uint32_t cap, head, n;
    uint64_t next_seq;
} evq;

/* ------------------------------------------------------------------------------------------ */
/* State.                                                                                     */

/* What a completion-queue tag stands for. Tags are embedded in their owner. */
enum tag_kind {
    TAG_ACCEPT,     /* a request_call came back */
    TAG_S_CLOSE,    /* stream: RECV_CLOSE_ON_SERVER / RECV_STATUS_ON_CLIENT, its last event */
    TAG_S_RECV,
    TAG_S_SEND,
    TAG_S_MD,       /* stream we dialed: initial metadata both ways */
    TAG_S_STATUS,   /* stream we accepted: SEND_STATUS_FROM_SERVER after a half-close */
};

typedef struct tag {
    hs_rpc_tag base; /* first: the loop calls base.done (tp_on_tag) */
    uint8_t kind;
    void *owner;
} tag;
#define TP_TAG(kind, owner) ((tag){{tp_on_tag}, (kind), (owner)})

typedef struct peer peer;
typedef struct stream stream;

typedef struct inbox_item {
    hs_key origin;
    hs_msg msg;
} inbox_item;

struct peer {
    hs_key key;
    char address[HS_TRANSPORT_MAX_ADDR];
    bool dial; /* we dial it: our key is lower and it has an address */
    bool dial_once; /* our key is higher: one dial at start (see DIALING in transport.c) */
    char name[8];

    /* CQ thread only. */
    stream *active;  /* the authenticated stream carrying traffic */
    stream *dialing; /* our call, before its handshake completes */
    uint64_t backoff_ms, next_dial_ms;
    bool ever_connected;

    /* Under t->mu. */
    evq outbox;
    bool connected;
    uint64_t sent, received, dropped, reconnects;
};

enum stream_state { ST_HANDSHAKE, ST_OPEN, ST_ENDING };

struct stream {
    hs_transport *t;
    stream *prev, *next; /* t->streams */
    grpc_call *call;
    grpc_channel *channel; /* streams we dialed own their channel */
    bool dialed;           /* we are the client of this call */
    enum stream_state state;
    int pending;           /* batches started and not yet completed */
    bool closed;           /* the close tag came back: the call is over */
    bool detached;         /* no longer the peer's active or dialing stream */
    peer *peer;            /* dialed: the target; accepted: set by the remote's Hello */
    char addr[64];         /* for logs */

    /* Handshake. */
    uint8_t my_challenge[CHALLENGE_LEN], their_challenge[CHALLENGE_LEN];
    bool got_hello;
    uint64_t handshake_deadline_ms;
    uint64_t opened_ms; /* when it became the peer's active stream */

    /* Sending: control frames (Hello, Auth) go before the peer's outbox. */
    blob *ctrl[2];
    int n_ctrl;
    bool send_in_flight, send_from_outbox, want_status;
    qent sending; /* the outbox entry in flight, requeued if its send fails */
    grpc_byte_buffer *send_bb;

    /* Receiving. */
    grpc_byte_buffer *recv_bb;
    bool recv_armed, recv_paused;
    bool recv_failed; /* a receive failed on the live call (dialed streams) */

    /* Completion of the call. */
    int cancelled;                                   /* accepted */
    grpc_metadata_array init_md, trail_md;           /* dialed */
    grpc_status_code status;                         /* dialed */
    grpc_slice details;                              /* dialed */
    const char *error_string;                        /* dialed */

    tag t_close, t_recv, t_send, t_md, t_status;
};

/* One outstanding request_call per method, plus the generic one. */
enum accept_kind {
    ACCEPT_CONNECT,
    ACCEPT_SUBMIT,
    ACCEPT_HEALTH_CHECK,
    ACCEPT_HEALTH_WATCH,
    ACCEPT_REFLECTION_V1,
    ACCEPT_REFLECTION_V1ALPHA,
    ACCEPT_GENERIC,
    ACCEPT_COUNT
};


typedef struct acceptor {
    tag t;
    hs_transport *tp;
    enum accept_kind kind;
    bool armed;
    grpc_call *call;
    gpr_timespec deadline;
    grpc_metadata_array md;
    grpc_call_details details;  /* generic only */
    grpc_byte_buffer *payload;  /* SubmitTransaction, health Check and Watch */
} acceptor;


struct hs_transport {
    hs_transport_config cfg; /* cfg.peers points at nothing after start: use peers[] */
    peer *peers;             /* sorted by key */
    size_t n_peers;
    char me_name[8];

    hs_rpc_loop loop; /* loop.srv: the server and queue */
    void *rm[ACCEPT_GENERIC]; /* registered methods[] */
    hs_health *health;         /* "" and hotstuff.v1.Replica */
    hs_reflection *reflection; /* immutable; shared by this port's reflection streams */
    acceptor acc[ACCEPT_COUNT];
    grpc_channel_args server_args, channel_args;
    grpc_arg server_arg_v[12], channel_arg_v[12];

    /* CQ thread only. */
    stream *streams;
    size_t n_handshaking_inbound;
    hs_svc_set svc;  /* health, reflection and unary replies (net/services.h) */
    atomic_bool resume_recv;

    /* Outboxes, stats and the tx handler. */
    pthread_mutex_t mu;
    hs_transport_stats stats;
    hs_transport_tx_fn tx_fn;
    void *tx_ctx;
    /* Admitted transactions not yet gossiped: bytes back to back in buf, one length each in
     * lens. Flushed as one Transaction frame per batch (gossip_flush_locked). */
    struct {
        uint8_t *buf;
        size_t len, cap;
        size_t *lens;
        size_t n, lens_cap;
    } gossip;

    /* The inbox. */
    struct {
        pthread_mutex_t mu;
        pthread_cond_t cv;
        evq q;
        bool closed;
        uint32_t users; /* threads inside an hs_network call or gossip; stop waits for 0 */
        bool paused; /* some streams stopped reading because the queue is above high water */
        uint32_t high, low;
    } in;
};

/* queue.c */
blob *tp_blob_ref(blob *b);
void tp_blob_unref(blob *b);
grpc_byte_buffer *tp_blob_to_bb(blob *b);
blob *tp_frame_pack(Hotstuff__V1__Frame *f);
bool tp_evq_init(evq *q, uint32_t cap);
bool tp_evq_push(evq *q, qent x, bool front, qent *dropped);
bool tp_evq_pop(evq *q, qent *out);
uint8_t tp_msg_rank(const hs_msg *m, uint64_t *view);

/* network.c */
void tp_key_name(const hs_key *k, char out[8]);
int tp_key_cmp(const hs_key *a, const hs_key *b);
peer *tp_find_peer(hs_transport *t, const hs_key *k);
uint64_t tp_jitter(uint64_t backoff);
void tp_kick(hs_transport *t);
void tp_inbox_item_free(inbox_item *it);
void tp_inbox_put(hs_transport *t, const hs_key *origin, hs_msg *m);
bool tp_inbox_should_pause(hs_transport *t);
void tp_gossip_flush_locked(hs_transport *t);
int tp_call_tx_handler(hs_transport *t, const hs_key *from, const uint8_t *tx, size_t len,
                       char reason[256]);

/* transport.c */
void tp_on_tag(hs_rpc_tag *t, bool ok);

/* stream.c */
bool tp_start_batch(stream *s, const grpc_op *ops, size_t n, tag *tg);
stream *tp_stream_new(hs_transport *t, grpc_call *call, bool dialed);
void tp_stream_free(stream *s);
void tp_stream_maybe_free(stream *s);
void tp_stream_end(stream *s, grpc_status_code code, const char *fmt,
                   ...) __attribute__((format(printf, 3, 4)));
void tp_refuse(stream *s, grpc_status_code code, const char *fmt,
               ...) __attribute__((format(printf, 3, 4)));
void tp_send_hello(stream *s);
void tp_stream_pump(stream *s);
void tp_on_send(stream *s, bool ok);
void tp_stream_arm_recv(stream *s);
void tp_on_recv(stream *s, bool ok);
void tp_on_close(stream *s);
void tp_dial(hs_transport *t, peer *p);

/* service.c */
extern const hs_rpc_method tp_methods[ACCEPT_GENERIC];
void tp_acceptor_arm(hs_transport *t, acceptor *a);
void tp_on_accept(acceptor *a, bool ok);

#endif
