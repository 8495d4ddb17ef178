/* server/replica/transport.c - the replica-to-replica network over gRPC core. See transport.h.
 *
 * THREADS. One thread (the "CQ thread") owns the completion queue, the server, every call and
 * every channel: only it starts batches, requests calls, cancels and unrefs. Other threads
 * (the library's algorithm, sync-server and poller threads; the app) touch only plain data
 * under t->mu (outboxes, stats, the tx handler) or inbox.mu (the inbox), then "kick" the CQ
 * thread: an empty batch on a call that is never started for real (on a lame channel), which
 * posts t->kick_tag to the queue at once (grpc-core.md §10.2). kick_pending coalesces kicks so
 * at most one kick event is queued at any time. The one exception to "only the CQ thread
 * touches gRPC" is that kick batch, serialized by kick_mu.
 *
 * STREAMS. One Connect stream per pair of peers. The lower key dials the higher one (peers
 * with no address are never dialed); the higher key only accepts. Any configured peer may
 * dial, though, so misconfigured pairs still connect. A stream is attributed to a key only
 * after the handshake (replica.proto's file comment) has verified the remote's signature.
 * If a second authenticated stream appears for a peer that has one, the "canonical" stream
 * (the one dialed by the lower key) wins; between two streams of the same direction the newer
 * wins (the older one is most likely a dead connection the remote already gave up on). The
 * loser ends with ALREADY_EXISTS. Both sides apply the same rule, so they keep the same one.
 *
 * Refusals, each with an hs_log line and counted: in refused_handshakes before the remote is
 * authenticated, in bad_messages after.
 *   wrong chain id or protocol version   FAILED_PRECONDITION
 *   key not among the peers (or our own) PERMISSION_DENIED
 *   bad handshake signature              UNAUTHENTICATED
 *   malformed or out-of-order frame      INVALID_ARGUMENT
 *   handshake not done in time           DEADLINE_EXCEEDED (inbound streams only)
 *   too many streams in handshake        RESOURCE_EXHAUSTED
 *   message over max_message_bytes       RESOURCE_EXHAUSTED, by gRPC's own size check; we only
 *                                        recognise it to count it (see oversized())
 *   a second stream for a connected pair ALREADY_EXISTS (not counted: see below)
 *   unknown method                       UNIMPLEMENTED (a generic request_call stays armed;
 *                                        counted in unimplemented_calls)
 *
 * OPERATOR SERVICES. The port also serves grpc.health.v1.Health (entries "" and
 * hotstuff.v1.Replica: SERVING until stop begins, NOT_SERVING from then on) and server
 * reflection v1 and v1alpha from the embedded descriptor set (grpc_health.h,
 * grpc_reflection.h), so grpcurl and health probers work here as on the admin port. Watch
 * sends the current status once and then holds the stream until the client leaves or the
 * server stops: the statuses here only change at stop, and stop ends every call. Each such
 * call is an "svc" counted with the unary replies, so stop waits for it like for them.
 *
 * DIALING. A dialed peer gets a fresh channel per attempt (local subchannel pool, so no
 * reconnect state is shared between attempts) and a fail-fast call. When the attempt fails or
 * the stream later ends, the next attempt waits backoff/2 + uniform(0, backoff/2) ms; backoff
 * starts at reconnect_initial_ms and doubles after each failed attempt up to reconnect_max_ms;
 * it goes back to the initial value when a stream ends after staying up for STABLE_MS.
 *
 * OUTBOX AND DROP POLICY. Each peer has one outbox of at most outbox_capacity encoded frames.
 * It belongs to the peer, not to a stream: broadcast and send queue to every configured peer
 * whether or not it is connected right now, the queue survives reconnects, and a frame whose
 * send failed because its stream broke goes back to the head of the queue. (Gossiped
 * transactions go only to peers connected at the time, as transport.h says.) One SEND is in
 * flight per stream, with GRPC_WRITE_BUFFER_HINT while more frames wait. When a frame arrives
 * at a full outbox, one frame is dropped - the lowest-ranked among the queued ones and the new
 * one - and counted in that peer's dropped_outbox_full. Ranks, dropped first to last:
 *   1. advertisements (AdvertiseBlock, AdvertisePC): periodic, each superseded by the next;
 *   2. gossiped transactions: the replica they were submitted to still holds them;
 *   3. progress messages (Proposal, Nudge, PhaseVote, NewView, TimeoutVote, AdvanceView),
 *      lowest view first: a replica drops messages of past views anyway;
 *   4. BlockSyncRequest: the sync client retries on its own timeout;
 *   5. BlockSyncResponse: costly to rebuild; dropped only when the outbox holds nothing else,
 *      and then counted and logged at warn level.
 * Within a rank (and view) the oldest goes first. Frames larger than max_message_bytes are
 * never queued (dropped_too_large, error log); send to a key that is not a peer is counted in
 * dropped_unknown_peer. Nothing is dropped without a count.
 *
 * INBOX. Decoded messages wait for Network.recv in a queue of inbox_capacity with the same
 * policy (inbox_dropped). Above 3/4 of capacity the CQ thread stops re-arming RECV on open
 * streams (HTTP/2 flow control then pushes back on the senders, whose outboxes apply the
 * policy); recv re-arms them through a kick once the queue is down to half. broadcast and send
 * to our own key put a copy straight into the inbox, attributed to our own key.
 *
 * STOP. hs_transport_stop closes the inbox (waking blocked recv calls) and waits for calls of
 * other threads to leave the transport; then the CQ thread shuts the server down
 * (grpc_server_shutdown_and_notify), stops dialing, lets open streams flush their outboxes for
 * up to STOP_GRACE_MS, cancels every call (grpc_server_cancel_all_calls and each client call),
 * waits for every call to finish and every request to come back, then destroys the server,
 * shuts the queue down and drains it. stop joins the thread and frees the rest.
 */
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
#include "net/pb.h"
#include "net/reflection.h"
#include "net/rpc.h"
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
#define MAX_WAIT_MS 1000    /* longest CQ wait, so timers are never much late */
#define MAX_PEERS 65536     /* sanity bound on the configured peer list */
#define MAX_CONCURRENT_STREAMS 100
#define HANDSHAKING_SLACK 16 /* inbound streams in handshake: 2 per peer + this */
#define STABLE_MS 10000      /* a stream up this long resets its peer's reconnect backoff */
#define GOSSIP_BATCH_BYTES (256 * 1024) /* a gossip frame carries at most this much */

/* ------------------------------------------------------------------------------------------ */
/* Encoded frames: reference-counted, shared by every outbox that queues them.                */

typedef struct blob {
    atomic_uint refs;
    uint32_t len;
    uint8_t data[];
} blob;

static blob *blob_new(size_t len) {
    if (len > UINT32_MAX) return NULL;
    blob *b = malloc(sizeof *b + (len ? len : 1));
    if (!b) return NULL;
    atomic_init(&b->refs, 1);
    b->len = (uint32_t)len;
    return b;
}

static blob *blob_ref(blob *b) {
    atomic_fetch_add_explicit(&b->refs, 1, memory_order_relaxed);
    return b;
}

/* acq_rel: the last owner (possibly a gRPC thread, through blob_slice_done) must see every
 * write made before the other owners let go. */
static void blob_unref(blob *b) {
    if (b && atomic_fetch_sub_explicit(&b->refs, 1, memory_order_acq_rel) == 1) free(b);
}

static void blob_slice_done(void *p) {
    blob_unref(p);
}

/* A byte buffer that reads the blob in place; the slice holds its own blob reference. */
static grpc_byte_buffer *blob_to_bb(blob *b) {
    blob_ref(b);
    grpc_slice s = grpc_slice_new_with_user_data(b->data, b->len, blob_slice_done, b);
    grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&s, 1);
    grpc_slice_unref(s);
    return bb;
}

/* Packs a frame as a ConnectRequest. ConnectResponse is wire-identical (replica.proto), so
 * the same bytes serve streams we dialed and streams we accepted. */
static blob *frame_pack(Hotstuff__V1__Frame *f) {
    Hotstuff__V1__ConnectRequest req = HOTSTUFF__V1__CONNECT_REQUEST__INIT;
    req.frame = f;
    size_t n = hotstuff__v1__connect_request__get_packed_size(&req);
    blob *b = blob_new(n);
    if (b) hotstuff__v1__connect_request__pack(&req, b->data);
    return b;
}

/* ------------------------------------------------------------------------------------------ */
/* Bounded queues with the drop policy (outboxes and the inbox).                              */

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

static bool evq_init(evq *q, uint32_t cap) {
    memset(q, 0, sizeof *q);
    q->e = calloc(cap, sizeof *q->e);
    q->cap = cap;
    return q->e != NULL;
}

static qent *evq_at(evq *q, uint32_t i) {
    return &q->e[(q->head + i) % q->cap];
}

/* True if the drop policy drops a before b. */
static bool drops_before(const qent *a, const qent *b) {
    if (a->rank != b->rank) return a->rank < b->rank;
    if (a->view != b->view) return a->view < b->view;
    return a->seq < b->seq;
}

static void evq_remove_at(evq *q, uint32_t i) {
    for (; i + 1 < q->n; i++) *evq_at(q, i) = *evq_at(q, i + 1);
    q->n--;
}

/* Index of the entry to drop among the queue and x, or UINT32_MAX for x itself. O(n), only
 * on a full queue. */
static uint32_t evq_victim(evq *q, const qent *x) {
    uint32_t vi = UINT32_MAX;
    const qent *v = x;
    for (uint32_t i = 0; i < q->n; i++) {
        const qent *c = evq_at(q, i);
        if (drops_before(c, v)) v = c, vi = i;
    }
    return vi;
}

/* Appends x (at the tail, or at the head when `front`, keeping x's seq). On a full queue the
 * policy's victim is removed first and returned in *dropped (it may be x itself, which is
 * then not queued). Returns whether something was dropped. */
static bool evq_push(evq *q, qent x, bool front, qent *dropped) {
    if (!front) x.seq = q->next_seq++;
    bool full = q->n == q->cap;
    if (full) {
        uint32_t vi = evq_victim(q, &x);
        if (vi == UINT32_MAX) {
            *dropped = x;
            return true;
        }
        *dropped = *evq_at(q, vi);
        evq_remove_at(q, vi);
    }
    if (front) {
        q->head = (q->head + q->cap - 1) % q->cap;
        q->n++;
        *evq_at(q, 0) = x;
    } else {
        *evq_at(q, q->n) = x;
        q->n++;
    }
    return full;
}

static bool evq_pop(evq *q, qent *out) {
    if (q->n == 0) return false;
    *out = *evq_at(q, 0);
    q->head = (q->head + 1) % q->cap;
    q->n--;
    return true;
}

/* Policy rank and view of a protocol message. */
static uint8_t msg_rank(const hs_msg *m, uint64_t *view) {
    *view = 0;
    switch (m->type) {
    case HS_MSG_ADVERTISE_BLOCK:
    case HS_MSG_ADVERTISE_PC: return RANK_ADVERTISE;
    case HS_MSG_SYNC_REQUEST: return RANK_SYNC_REQUEST;
    case HS_MSG_SYNC_RESPONSE: return RANK_SYNC_RESPONSE;
    default: hs_msg_view(m, view); return RANK_PROGRESS;
    }
}

/* ------------------------------------------------------------------------------------------ */
/* State.                                                                                     */

/* What a completion-queue tag stands for. Tags are embedded in their owner. */
enum tag_kind {
    TAG_KICK,
    TAG_SHUTDOWN,   /* grpc_server_shutdown_and_notify finished */
    TAG_ACCEPT,     /* a request_call came back */
    TAG_S_CLOSE,    /* stream: RECV_CLOSE_ON_SERVER / RECV_STATUS_ON_CLIENT, its last event */
    TAG_S_RECV,
    TAG_S_SEND,
    TAG_S_MD,       /* stream we dialed: initial metadata both ways */
    TAG_S_STATUS,   /* stream we accepted: SEND_STATUS_FROM_SERVER after a half-close */
    TAG_UNARY_DONE, /* a unary reply (SubmitTransaction, UNIMPLEMENTED) finished */
    TAG_V_CLOSE,    /* svc call (reflection, health Watch): RECV_CLOSE_ON_SERVER */
    TAG_V_RECV,
    TAG_V_SEND,
    TAG_V_STATUS,
};

typedef struct tag {
    uint8_t kind;
    void *owner;
} tag;

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

/* The registered methods, in accept_kind order (the generic acceptor takes the rest). */
static const hs_rpc_method methods[ACCEPT_GENERIC] = {
    [ACCEPT_CONNECT] = {METHOD_CONNECT, false},
    [ACCEPT_SUBMIT] = {METHOD_SUBMIT, true},
    [ACCEPT_HEALTH_CHECK] = {HS_HEALTH_CHECK_METHOD, true},
    [ACCEPT_HEALTH_WATCH] = {HS_HEALTH_WATCH_METHOD, true},
    [ACCEPT_REFLECTION_V1] = {HS_REFLECTION_V1_METHOD, false},
    [ACCEPT_REFLECTION_V1ALPHA] = {HS_REFLECTION_V1ALPHA_METHOD, false},
};

typedef struct acceptor {
    tag t;
    enum accept_kind kind;
    bool armed;
    grpc_call *call;
    gpr_timespec deadline;
    grpc_metadata_array md;
    grpc_call_details details;  /* generic only */
    grpc_byte_buffer *payload;  /* SubmitTransaction, health Check and Watch */
} acceptor;

/* A reflection stream or a health Watch. Every step is started from the completion of the
 * previous one, so when no batch is pending nothing more will happen and it is freed. */
typedef struct svc {
    grpc_call *call;
    hs_reflection_stream *rs; /* NULL for a Watch */
    grpc_byte_buffer *recv, *send;
    int cancelled;
    int pending;
    bool status_sent;
    tag t_close, t_recv, t_send, t_status;
} svc;

typedef struct unary {
    tag t;
    grpc_call *call;
    grpc_byte_buffer *reply;
    int cancelled;
} unary;

enum phase { PH_RUNNING, PH_DRAINING, PH_CANCELLING, PH_CQ_SHUTDOWN };

struct hs_transport {
    hs_transport_config cfg; /* cfg.peers points at nothing after start: use peers[] */
    peer *peers;             /* sorted by key */
    size_t n_peers;
    char me_name[8];

    hs_rpc_server srv;
    void *rm[ACCEPT_GENERIC]; /* registered methods[] */
    hs_health *health;         /* "" and hotstuff.v1.Replica */
    hs_reflection *reflection; /* immutable; shared by this port's reflection streams */
    acceptor acc[ACCEPT_COUNT];
    grpc_channel_args server_args, channel_args;
    grpc_arg server_arg_v[12], channel_arg_v[12];
    pthread_t thread;

    /* CQ thread only. */
    stream *streams;
    size_t n_handshaking_inbound;
    size_t n_unary; /* unary replies and svc calls in progress */
    enum phase phase;
    uint64_t grace_deadline_ms;
    bool shutdown_done;
    tag shutdown_tag;

    hs_rpc_kick kick;
    bool kick_ready; /* kick initialised (for a failed start's teardown) */
    tag kick_tag;
    atomic_bool stop_requested;
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

/* ------------------------------------------------------------------------------------------ */
/* Small helpers.                                                                             */

static void key_name(const hs_key *k, char out[8]) {
    hs_b64_short(k->b, HS_KEY_LEN, out);
}

static int key_cmp(const hs_key *a, const hs_key *b) {
    return memcmp(a->b, b->b, HS_KEY_LEN);
}

static int peer_cmp(const void *a, const void *b) {
    return key_cmp(&((const peer *)a)->key, &((const peer *)b)->key);
}

static peer *find_peer(hs_transport *t, const hs_key *k) {
    size_t lo = 0, hi = t->n_peers;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = key_cmp(&t->peers[mid].key, k);
        if (c == 0) return &t->peers[mid];
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

/* Random delay in [backoff/2, backoff]. */
static uint64_t jitter(uint64_t backoff) {
    uint64_t half = backoff / 2;
    uint32_t span = half > UINT32_MAX - 1 ? UINT32_MAX - 1 : (uint32_t)half;
    return backoff - half + randombytes_uniform(span + 1);
}

/* ------------------------------------------------------------------------------------------ */
/* Kick: wake the CQ thread from any thread.                                                  */

static void kick(hs_transport *t) {
    hs_rpc_wake(&t->kick);
}

/* ------------------------------------------------------------------------------------------ */
/* Inbox.                                                                                     */

static void inbox_item_free(inbox_item *it) {
    if (!it) return;
    hs_msg_free(&it->msg);
    free(it);
}

/* Calls from other threads (broadcast, send, recv, gossip) hold the transport open while
 * they run: stop closes it first, then waits for them to leave before tearing down. */
static bool api_enter(hs_transport *t) {
    pthread_mutex_lock(&t->in.mu);
    bool open = !t->in.closed;
    if (open) t->in.users++;
    pthread_mutex_unlock(&t->in.mu);
    return open;
}

static void api_leave(hs_transport *t) {
    pthread_mutex_lock(&t->in.mu);
    if (--t->in.users == 0 && t->in.closed) pthread_cond_broadcast(&t->in.cv);
    pthread_mutex_unlock(&t->in.mu);
}

/* Queues a decoded message (ownership of *m moves in; *m is left empty). */
static void inbox_put(hs_transport *t, const hs_key *origin, hs_msg *m) {
    inbox_item *it = malloc(sizeof *it);
    if (!it) {
        hs_msg_free(m);
        pthread_mutex_lock(&t->mu);
        t->stats.inbox_dropped++;
        pthread_mutex_unlock(&t->mu);
        return;
    }
    it->origin = *origin;
    it->msg = *m;
    memset(m, 0, sizeof *m);
    qent e = {.item = it};
    e.rank = msg_rank(&it->msg, &e.view);
    qent dropped;
    pthread_mutex_lock(&t->in.mu);
    bool closed = t->in.closed;
    bool drop = !closed && evq_push(&t->in.q, e, false, &dropped);
    if (!closed) pthread_cond_signal(&t->in.cv);
    pthread_mutex_unlock(&t->in.mu);
    if (closed) {
        inbox_item_free(it);
        return;
    }
    if (drop) {
        const inbox_item *d = dropped.item;
        hs_log(dropped.rank == RANK_SYNC_RESPONSE ? HS_LOG_WARN : HS_LOG_DEBUG, MODULE,
               "inbox full (%u): dropped a %s", t->in.q.cap, hs_msg_type_name(d->msg.type));
        inbox_item_free(dropped.item);
        pthread_mutex_lock(&t->mu);
        t->stats.inbox_dropped++;
        pthread_mutex_unlock(&t->mu);
    }
}

/* CQ thread: whether an open stream should stop reading for now. Sets in.paused so that recv
 * knows to ask for a resume. */
static bool inbox_should_pause(hs_transport *t) {
    pthread_mutex_lock(&t->in.mu);
    bool over = t->in.q.n >= t->in.high;
    if (over) t->in.paused = true;
    pthread_mutex_unlock(&t->in.mu);
    return over;
}

static hs_status net_recv(void *self, int timeout_ms, hs_key *origin, hs_msg *out) {
    hs_transport *t = self;
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    if (timeout_ms > 0) {
        until.tv_sec += timeout_ms / 1000;
        until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) until.tv_sec++, until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&t->in.mu);
    if (t->in.closed) {
        pthread_mutex_unlock(&t->in.mu);
        return HS_ERR_CLOSED;
    }
    t->in.users++;
    while (t->in.q.n == 0 && !t->in.closed && timeout_ms != 0) {
        if (timeout_ms < 0) {
            pthread_cond_wait(&t->in.cv, &t->in.mu);
        } else if (pthread_cond_timedwait(&t->in.cv, &t->in.mu, &until) == ETIMEDOUT) {
            break;
        }
    }
    qent e;
    hs_status st = t->in.closed ? HS_ERR_CLOSED : evq_pop(&t->in.q, &e) ? HS_OK : HS_TIMEOUT;
    bool resume = st == HS_OK && t->in.paused && t->in.q.n <= t->in.low;
    if (resume) t->in.paused = false;
    if (--t->in.users == 0 && t->in.closed) pthread_cond_broadcast(&t->in.cv);
    pthread_mutex_unlock(&t->in.mu);
    if (st != HS_OK) return st;

    inbox_item *it = e.item;
    *origin = it->origin;
    *out = it->msg;
    free(it);
    if (resume) {
        atomic_store(&t->resume_recv, true);
        kick(t);
    }
    return HS_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* Outboxes (any thread).                                                                     */

/* Queues one reference to b for p. Caller holds t->mu. */
static void outbox_put_locked(hs_transport *t, peer *p, blob *b, uint8_t rank, uint64_t view) {
    qent e = {.item = blob_ref(b), .rank = rank, .view = view};
    qent dropped;
    if (evq_push(&p->outbox, e, false, &dropped)) {
        p->dropped++;
        hs_log(dropped.rank == RANK_SYNC_RESPONSE ? HS_LOG_WARN : HS_LOG_DEBUG, MODULE,
               "outbox of %s full (%u): dropped a frame of rank %d view %llu", p->name,
               p->outbox.cap, dropped.rank, (unsigned long long)dropped.view);
        blob_unref(dropped.item);
    }
}

static bool frame_fits(hs_transport *t, const blob *b, const char *what) {
    if (b->len <= t->cfg.max_message_bytes) return true;
    hs_log(HS_LOG_ERROR, MODULE, "%s of %u bytes is over max_message_bytes (%zu): not sent", what,
           b->len, t->cfg.max_message_bytes);
    pthread_mutex_lock(&t->mu);
    t->stats.dropped_too_large++;
    pthread_mutex_unlock(&t->mu);
    return false;
}

/* Encodes a protocol message as a frame. NULL when memory runs out (logged). */
static blob *message_frame(const hs_msg *m) {
    hs_pb_arena a;
    hs_pb_arena_init(&a);
    Hotstuff__V1__Frame f = HOTSTUFF__V1__FRAME__INIT;
    f.kind_case = HOTSTUFF__V1__FRAME__KIND_MESSAGE;
    f.message = hs_map_msg_to_pb(&a, m);
    blob *b = f.message ? frame_pack(&f) : NULL;
    hs_pb_arena_free(&a);
    if (!b) hs_log(HS_LOG_ERROR, MODULE, "out of memory encoding a %s", hs_msg_type_name(m->type));
    return b;
}

static void deliver_local(hs_transport *t, const hs_msg *m) {
    hs_msg copy;
    if (hs_msg_copy(&copy, m) != HS_OK) {
        pthread_mutex_lock(&t->mu);
        t->stats.inbox_dropped++;
        pthread_mutex_unlock(&t->mu);
        return;
    }
    inbox_put(t, &t->cfg.me.public_key, &copy);
}

static void net_broadcast(void *self, const hs_msg *m) {
    hs_transport *t = self;
    if (!api_enter(t)) return;
    deliver_local(t, m);
    blob *b = t->n_peers ? message_frame(m) : NULL;
    if (!b) return api_leave(t);
    if (frame_fits(t, b, hs_msg_type_name(m->type))) {
        uint64_t view;
        uint8_t rank = msg_rank(m, &view);
        pthread_mutex_lock(&t->mu);
        for (size_t i = 0; i < t->n_peers; i++) outbox_put_locked(t, &t->peers[i], b, rank, view);
        pthread_mutex_unlock(&t->mu);
        kick(t);
    }
    blob_unref(b);
    api_leave(t);
}

static void send_to(hs_transport *t, const hs_key *to, const hs_msg *m) {
    if (key_cmp(to, &t->cfg.me.public_key) == 0) {
        deliver_local(t, m);
        return;
    }
    peer *p = find_peer(t, to);
    if (!p) {
        char name[8];
        key_name(to, name);
        hs_log(HS_LOG_DEBUG, MODULE, "send of a %s to %s: not a peer", hs_msg_type_name(m->type),
               name);
        pthread_mutex_lock(&t->mu);
        t->stats.dropped_unknown_peer++;
        pthread_mutex_unlock(&t->mu);
        return;
    }
    blob *b = message_frame(m);
    if (!b) return;
    if (frame_fits(t, b, hs_msg_type_name(m->type))) {
        uint64_t view;
        uint8_t rank = msg_rank(m, &view);
        pthread_mutex_lock(&t->mu);
        outbox_put_locked(t, p, b, rank, view);
        pthread_mutex_unlock(&t->mu);
        kick(t);
    }
    blob_unref(b);
}

static void net_send(void *self, const hs_key *to, const hs_msg *m) {
    hs_transport *t = self;
    if (!api_enter(t)) return;
    send_to(t, to, m);
    api_leave(t);
}

static void net_init_validator_set(void *self, const hs_validator_set *vs) {
    /* Peers come from the configuration; the validator set does not change who we talk to. */
    hs_log(HS_LOG_DEBUG, MODULE, "validator set of %u members", vs->n);
}

static void net_update_validator_set(void *self, const hs_vs_updates *u) {
    hs_log(HS_LOG_DEBUG, MODULE, "validator set update: %u inserts, %u deletes", u->n_inserts,
           u->n_deletes);
}

hs_network hs_transport_network(hs_transport *t) {
    hs_network n = {
        .self = t,
        .init_validator_set = net_init_validator_set,
        .update_validator_set = net_update_validator_set,
        .broadcast = net_broadcast,
        .send = net_send,
        .recv = net_recv,
    };
    return n;
}

/* A gossip batch is flushed once it holds this much (or at the CQ thread's next wake-up,
 * whichever comes first). Each transaction costs at most 1 + 10 bytes of framing. */
static size_t gossip_batch_limit(const hs_transport *t) {
    size_t lim = t->cfg.max_message_bytes / 2;
    return lim < GOSSIP_BATCH_BYTES ? lim : GOSSIP_BATCH_BYTES;
}

/* Packs the pending batch as one frame to every connected peer and empties it. Under t->mu.
 * A batch that cannot be packed (out of memory) is dropped and counted: gossip is an
 * optimisation, the replica the transactions were submitted to still holds them. */
static void gossip_flush_locked(hs_transport *t) {
    size_t n = t->gossip.n;
    if (n == 0) return;
    ProtobufCBinaryData *items = malloc(n * sizeof *items);
    blob *b = NULL;
    if (items) {
        size_t off = 0;
        for (size_t i = 0; i < n; i++) {
            items[i].data = t->gossip.buf + off;
            items[i].len = t->gossip.lens[i];
            off += t->gossip.lens[i];
        }
        assert(off == t->gossip.len);
        /* The first goes in data, the rest in batch: a replica from before batching reads
         * only data, so during a rolling upgrade it still gets one per frame. */
        Hotstuff__V1__Transaction x = HOTSTUFF__V1__TRANSACTION__INIT;
        x.data = items[0];
        x.n_batch = n - 1;
        x.batch = n > 1 ? items + 1 : NULL;
        Hotstuff__V1__Frame f = HOTSTUFF__V1__FRAME__INIT;
        f.kind_case = HOTSTUFF__V1__FRAME__KIND_TRANSACTION;
        f.transaction = &x;
        b = frame_pack(&f);
        free(items);
    }
    t->gossip.n = 0;
    t->gossip.len = 0;
    if (!b) {
        t->stats.dropped_gossip += n;
        hs_log(HS_LOG_WARN, MODULE, "out of memory: a gossip batch of %zu transactions dropped", n);
        return;
    }
    /* The batch limit keeps the frame well under max_message_bytes. */
    assert(b->len <= t->cfg.max_message_bytes);
    t->stats.gossip_txs += n;
    t->stats.gossip_batches++;
    for (size_t i = 0; i < t->n_peers; i++) {
        if (t->peers[i].connected) outbox_put_locked(t, &t->peers[i], b, RANK_TX, 0);
    }
    blob_unref(b);
}

/* Appends to the pending batch (flushing first when it would overflow). Under t->mu. */
static void gossip_add_locked(hs_transport *t, const uint8_t *tx, size_t len) {
    size_t lim = gossip_batch_limit(t);
    if (t->gossip.n && t->gossip.len + len > lim) gossip_flush_locked(t);
    if (t->gossip.len + len > t->gossip.cap) {
        size_t cap = t->gossip.cap ? t->gossip.cap : 4096;
        while (cap < t->gossip.len + len) cap *= 2;
        uint8_t *nb = realloc(t->gossip.buf, cap);
        if (!nb) goto nomem;
        t->gossip.buf = nb;
        t->gossip.cap = cap;
    }
    if (t->gossip.n == t->gossip.lens_cap) {
        size_t cap = t->gossip.lens_cap ? 2 * t->gossip.lens_cap : 64;
        size_t *nl = realloc(t->gossip.lens, cap * sizeof *nl);
        if (!nl) goto nomem;
        t->gossip.lens = nl;
        t->gossip.lens_cap = cap;
    }
    memcpy(t->gossip.buf + t->gossip.len, tx, len);
    t->gossip.len += len;
    t->gossip.lens[t->gossip.n++] = len;
    if (t->gossip.len >= lim) gossip_flush_locked(t);
    return;
nomem:
    t->stats.dropped_gossip++;
    hs_log(HS_LOG_WARN, MODULE, "out of memory: a gossiped transaction dropped");
}

void hs_transport_gossip_tx(hs_transport *t, const uint8_t *tx, size_t len) {
    if (!api_enter(t)) return;
    /* A lone transaction over the batch limit would make a frame over max_message_bytes. */
    if (len > gossip_batch_limit(t)) {
        hs_log(HS_LOG_ERROR, MODULE,
               "transaction of %zu bytes is over half of max_message_bytes (%zu): not gossiped",
               len, t->cfg.max_message_bytes);
        pthread_mutex_lock(&t->mu);
        t->stats.dropped_too_large++;
        pthread_mutex_unlock(&t->mu);
        return api_leave(t);
    }
    pthread_mutex_lock(&t->mu);
    gossip_add_locked(t, tx, len);
    pthread_mutex_unlock(&t->mu);
    kick(t); /* the CQ thread flushes what is pending when it wakes */
    api_leave(t);
}

void hs_transport_set_tx_handler(hs_transport *t, hs_transport_tx_fn fn, void *ctx) {
    pthread_mutex_lock(&t->mu);
    t->tx_fn = fn;
    t->tx_ctx = ctx;
    pthread_mutex_unlock(&t->mu);
}

/* Calls the tx handler (CQ thread); returns its status code, with reason filled. */
static int call_tx_handler(hs_transport *t, const hs_key *from, const uint8_t *tx, size_t len,
                           char reason[256]) {
    pthread_mutex_lock(&t->mu);
    hs_transport_tx_fn fn = t->tx_fn;
    void *ctx = t->tx_ctx;
    pthread_mutex_unlock(&t->mu);
    reason[0] = '\0';
    if (!fn) {
        snprintf(reason, 256, "not accepting transactions yet");
        return GRPC_STATUS_UNAVAILABLE;
    }
    int code = fn(ctx, from, tx, len, reason);
    reason[255] = '\0';
    if (code < 0 || code > GRPC_STATUS_UNAUTHENTICATED) code = GRPC_STATUS_INTERNAL;
    return code;
}

/* ------------------------------------------------------------------------------------------ */
/* Streams: lifecycle (CQ thread).                                                            */

static void stream_pump(stream *s);
static void stream_arm_recv(stream *s);
static void schedule_dial(hs_transport *t, peer *p, bool failed);

static bool start_batch(stream *s, const grpc_op *ops, size_t n, tag *tg) {
    grpc_call_error e = grpc_call_start_batch(s->call, ops, n, tg, NULL);
    if (e != GRPC_CALL_OK) {
        hs_log(HS_LOG_ERROR, MODULE, "stream %s: start_batch(kind %d) failed: %d", s->addr,
               tg->kind, (int)e);
        grpc_call_cancel(s->call, NULL);
        return false;
    }
    s->pending++;
    return true;
}

static stream *stream_new(hs_transport *t, grpc_call *call, bool dialed) {
    stream *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->t = t;
    s->call = call;
    s->dialed = dialed;
    s->state = ST_HANDSHAKE;
    s->handshake_deadline_ms = hs_mono_ms() + t->cfg.handshake_timeout_ms;
    s->t_close = (tag){TAG_S_CLOSE, s};
    s->t_recv = (tag){TAG_S_RECV, s};
    s->t_send = (tag){TAG_S_SEND, s};
    s->t_md = (tag){TAG_S_MD, s};
    s->t_status = (tag){TAG_S_STATUS, s};
    grpc_metadata_array_init(&s->init_md);
    grpc_metadata_array_init(&s->trail_md);
    s->details = grpc_empty_slice();
    randombytes_buf(s->my_challenge, CHALLENGE_LEN);
    s->next = t->streams;
    if (t->streams) t->streams->prev = s;
    t->streams = s;
    return s;
}

static void stream_free(stream *s) {
    hs_transport *t = s->t;
    if (s->prev) s->prev->next = s->next;
    else t->streams = s->next;
    if (s->next) s->next->prev = s->prev;
    if (!s->dialed && s->state == ST_HANDSHAKE) t->n_handshaking_inbound--;
    for (int i = 0; i < s->n_ctrl; i++) blob_unref(s->ctrl[i]);
    if (s->recv_bb) grpc_byte_buffer_destroy(s->recv_bb);
    grpc_metadata_array_destroy(&s->init_md);
    grpc_metadata_array_destroy(&s->trail_md);
    grpc_slice_unref(s->details);
    gpr_free((void *)s->error_string);
    if (s->call) grpc_call_unref(s->call);
    if (s->channel) grpc_channel_destroy(s->channel);
    free(s);
}

static void stream_maybe_free(stream *s) {
    if (s->closed && s->pending == 0) stream_free(s);
}

/* Leaves the handshake state (bookkeeping of the inbound handshake bound). */
static void stream_set_state(stream *s, enum stream_state st) {
    if (!s->dialed && s->state == ST_HANDSHAKE && st != ST_HANDSHAKE)
        s->t->n_handshaking_inbound--;
    s->state = st;
}

/* The stream no longer carries traffic for its peer. Idempotent. */
static void stream_detach(stream *s) {
    if (s->detached) return;
    s->detached = true;
    peer *p = s->peer;
    if (!p) return;
    hs_transport *t = s->t;
    if (p->dialing == s) {
        p->dialing = NULL;
        schedule_dial(t, p, true);
    }
    if (p->active == s) {
        p->active = NULL;
        pthread_mutex_lock(&t->mu);
        p->connected = false;
        pthread_mutex_unlock(&t->mu);
        hs_log(HS_LOG_INFO, MODULE, "disconnected from %s", p->name);
        /* Only a stream that stayed up resets the backoff, so that a peer that authenticates
         * and then fails at once (or fights over duplicates) is not redialed in a tight loop. */
        bool stable = hs_mono_ms() - s->opened_ms >= STABLE_MS;
        if (stable) p->backoff_ms = t->cfg.reconnect_initial_ms;
        schedule_dial(t, p, !stable);
    }
}

/* Ends a stream with a status: the remote sees `code` and `msg` (for calls we accepted, as
 * the call's status; for calls we dialed, as a cancellation). */
static void stream_end(stream *s, grpc_status_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void stream_end(stream *s, grpc_status_code code, const char *fmt, ...) {
    if (s->state == ST_ENDING || s->closed) return;
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    stream_set_state(s, ST_ENDING);
    stream_detach(s);
    grpc_call_cancel_with_status(s->call, code, msg, NULL);
}

/* Refuses a stream for a handshake failure: counted, logged, ended with code. */
static void refuse(stream *s, grpc_status_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void refuse(stream *s, grpc_status_code code, const char *fmt, ...) {
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    hs_transport *t = s->t;
    pthread_mutex_lock(&t->mu);
    t->stats.refused_handshakes++;
    pthread_mutex_unlock(&t->mu);
    hs_log(HS_LOG_WARN, MODULE, "refused %s stream %s: %s (%s)", s->dialed ? "dialed" : "inbound",
           s->addr, msg, hs_grpc_code_name(code));
    stream_end(s, code, "%s", msg);
}

/* An authenticated peer sent something undecodable: counted, logged, stream ended. */
static void bad_message(stream *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void bad_message(stream *s, const char *fmt, ...) {
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    hs_transport *t = s->t;
    pthread_mutex_lock(&t->mu);
    t->stats.bad_messages++;
    pthread_mutex_unlock(&t->mu);
    hs_log(HS_LOG_WARN, MODULE, "bad message from %s: %s", s->peer ? s->peer->name : s->addr, msg);
    stream_end(s, GRPC_STATUS_INVALID_ARGUMENT, "%s", msg);
}

static void stream_queue_ctrl(stream *s, Hotstuff__V1__Frame *f) {
    blob *b = frame_pack(f);
    if (!b || s->n_ctrl == 2) {
        blob_unref(b);
        stream_end(s, GRPC_STATUS_INTERNAL, "out of memory");
        return;
    }
    s->ctrl[s->n_ctrl++] = b;
    stream_pump(s);
}

static void send_hello(stream *s) {
    hs_transport *t = s->t;
    Hotstuff__V1__Hello h = HOTSTUFF__V1__HELLO__INIT;
    h.protocol_version = PROTOCOL_VERSION;
    h.chain_id = t->cfg.chain_id;
    h.key.data = t->cfg.me.public_key.b;
    h.key.len = HS_KEY_LEN;
    h.challenge.data = s->my_challenge;
    h.challenge.len = CHALLENGE_LEN;
    Hotstuff__V1__Frame f = HOTSTUFF__V1__FRAME__INIT;
    f.kind_case = HOTSTUFF__V1__FRAME__KIND_HELLO;
    f.hello = &h;
    stream_queue_ctrl(s, &f);
}

/* The bytes both sides sign: see replica.proto. role is the signer's. */
static void transcript(const stream *s, uint8_t role, uint8_t out[TRANSCRIPT_LEN]) {
    const hs_transport *t = s->t;
    const uint8_t *dial_ch = s->dialed ? s->my_challenge : s->their_challenge;
    const uint8_t *acc_ch = s->dialed ? s->their_challenge : s->my_challenge;
    const hs_key *dial_key = s->dialed ? &t->cfg.me.public_key : &s->peer->key;
    const hs_key *acc_key = s->dialed ? &s->peer->key : &t->cfg.me.public_key;
    uint8_t *p = out;
    memcpy(p, HANDSHAKE_DOMAIN, HANDSHAKE_DOMAIN_LEN), p += HANDSHAKE_DOMAIN_LEN;
    for (int i = 0; i < 8; i++) *p++ = (uint8_t)(t->cfg.chain_id >> (8 * i));
    memcpy(p, dial_ch, CHALLENGE_LEN), p += CHALLENGE_LEN;
    memcpy(p, acc_ch, CHALLENGE_LEN), p += CHALLENGE_LEN;
    memcpy(p, dial_key->b, HS_KEY_LEN), p += HS_KEY_LEN;
    memcpy(p, acc_key->b, HS_KEY_LEN), p += HS_KEY_LEN;
    *p = role;
}

static void send_auth(stream *s) {
    uint8_t tr[TRANSCRIPT_LEN];
    transcript(s, s->dialed ? ROLE_DIALER : ROLE_ACCEPTOR, tr);
    hs_sig sig;
    hs_sign(&s->t->cfg.me, tr, sizeof tr, &sig);
    Hotstuff__V1__Auth a = HOTSTUFF__V1__AUTH__INIT;
    a.signature.data = sig.b;
    a.signature.len = HS_SIG_LEN;
    Hotstuff__V1__Frame f = HOTSTUFF__V1__FRAME__INIT;
    f.kind_case = HOTSTUFF__V1__FRAME__KIND_AUTH;
    f.auth = &a;
    stream_queue_ctrl(s, &f);
}

/* ------------------------------------------------------------------------------------------ */
/* Streams: sending and receiving (CQ thread).                                                */

/* Starts the next send if none is in flight: control frames first, then (on the peer's
 * active stream) the peer's outbox; on an accepted stream the client half-closed, the final
 * status once everything queued has gone. */
static void stream_pump(stream *s) {
    hs_transport *t = s->t;
    if (s->send_in_flight || s->closed) return;
    blob *b = NULL;
    bool more = false;
    if (s->state != ST_ENDING && s->n_ctrl > 0) {
        b = s->ctrl[0];
        s->ctrl[0] = s->ctrl[1];
        s->n_ctrl--;
        s->send_from_outbox = false;
        more = s->n_ctrl > 0;
    } else if (s->state == ST_OPEN && s->peer && s->peer->active == s) {
        pthread_mutex_lock(&t->mu);
        bool got = evq_pop(&s->peer->outbox, &s->sending);
        more = s->peer->outbox.n > 0;
        pthread_mutex_unlock(&t->mu);
        if (got) {
            b = s->sending.item;
            s->send_from_outbox = true;
        }
    }
    if (!b) {
        if (s->want_status && !s->dialed) {
            s->want_status = false;
            grpc_op op = {0};
            op.op = GRPC_OP_SEND_STATUS_FROM_SERVER;
            op.data.send_status_from_server.status = GRPC_STATUS_OK;
            start_batch(s, &op, 1, &s->t_status);
        }
        return;
    }
    s->send_bb = blob_to_bb(b);
    if (!s->send_from_outbox) blob_unref(b); /* the byte buffer holds its own reference */
    grpc_op op = {0};
    op.op = GRPC_OP_SEND_MESSAGE;
    op.flags = more ? GRPC_WRITE_BUFFER_HINT : 0;
    op.data.send_message.send_message = s->send_bb;
    if (start_batch(s, &op, 1, &s->t_send)) {
        s->send_in_flight = true;
    } else {
        grpc_byte_buffer_destroy(s->send_bb);
        s->send_bb = NULL;
    }
}

static void on_send(stream *s, bool ok) {
    hs_transport *t = s->t;
    s->send_in_flight = false;
    grpc_byte_buffer_destroy(s->send_bb);
    s->send_bb = NULL;
    if (s->send_from_outbox) {
        peer *p = s->peer;
        s->send_from_outbox = false;
        pthread_mutex_lock(&t->mu);
        if (ok) {
            p->sent++;
            blob_unref(s->sending.item);
        } else {
            /* The stream broke under it: it goes first on the next stream. */
            qent dropped;
            if (evq_push(&p->outbox, s->sending, true, &dropped)) {
                p->dropped++;
                blob_unref(dropped.item);
            }
        }
        pthread_mutex_unlock(&t->mu);
        /* A stream that replaced this one may be idle: give it the frame now. */
        if (!ok && p->active && p->active != s) stream_pump(p->active);
    }
    if (ok) stream_pump(s);
}

static void stream_arm_recv(stream *s) {
    if (s->recv_armed || s->closed || s->state == ST_ENDING) return;
    if (s->state == ST_OPEN && inbox_should_pause(s->t)) {
        s->recv_paused = true;
        return;
    }
    s->recv_paused = false;
    grpc_op op = {0};
    op.op = GRPC_OP_RECV_MESSAGE;
    op.data.recv_message.recv_message = &s->recv_bb;
    if (start_batch(s, &op, 1, &s->t_recv)) s->recv_armed = true;
}

/* A stream of ours (dialed or accepted) passed the handshake: make it the peer's stream,
 * unless the peer already has the better one. */
static bool canonical(const stream *s) {
    bool i_am_lower = key_cmp(&s->t->cfg.me.public_key, &s->peer->key) < 0;
    return s->dialed == i_am_lower;
}

static void on_authenticated(stream *s) {
    hs_transport *t = s->t;
    peer *p = s->peer;
    stream_set_state(s, ST_OPEN);
    if (p->dialing == s) p->dialing = NULL;
    stream *old = p->active;
    if (old) {
        bool keep_old = canonical(old) && !canonical(s);
        hs_log(HS_LOG_INFO, MODULE, "second stream with %s: keeping the %s one", p->name,
               keep_old ? "older" : "newer");
        stream *loser = keep_old ? s : old;
        loser->detached = true; /* leave the peer connected through the winner */
        stream_end(loser, GRPC_STATUS_ALREADY_EXISTS, "duplicate stream");
        if (keep_old) return;
    }
    p->active = s;
    s->opened_ms = hs_mono_ms();
    pthread_mutex_lock(&t->mu);
    p->connected = true;
    if (p->ever_connected && !old) p->reconnects++;
    pthread_mutex_unlock(&t->mu);
    if (!old) {
        hs_log(HS_LOG_INFO, MODULE, "connected to %s (%s, %s)", p->name,
               s->dialed ? "dialed" : "accepted", s->addr);
    }
    p->ever_connected = true;
    stream_pump(s);
}

static void on_hello(stream *s, const Hotstuff__V1__Hello *h) {
    hs_transport *t = s->t;
    if (s->got_hello) return refuse(s, GRPC_STATUS_INVALID_ARGUMENT, "second Hello");
    if (h->protocol_version != PROTOCOL_VERSION)
        return refuse(s, GRPC_STATUS_FAILED_PRECONDITION, "protocol version %u, want %u",
                      h->protocol_version, PROTOCOL_VERSION);
    if (h->chain_id != t->cfg.chain_id)
        return refuse(s, GRPC_STATUS_FAILED_PRECONDITION, "chain id %llu, want %llu",
                      (unsigned long long)h->chain_id, (unsigned long long)t->cfg.chain_id);
    if (h->key.len != HS_KEY_LEN || h->challenge.len != CHALLENGE_LEN)
        return refuse(s, GRPC_STATUS_INVALID_ARGUMENT, "Hello: key of %zu bytes, challenge of %zu",
                      h->key.len, h->challenge.len);
    hs_key k;
    memcpy(k.b, h->key.data, HS_KEY_LEN);
    char name[8];
    key_name(&k, name);
    if (s->dialed) {
        if (key_cmp(&k, &s->peer->key) != 0)
            return refuse(s, GRPC_STATUS_PERMISSION_DENIED, "%s answered with key %s",
                          s->peer->name, name);
    } else {
        peer *p = find_peer(t, &k);
        if (!p) return refuse(s, GRPC_STATUS_PERMISSION_DENIED, "key %s is not a peer", name);
        s->peer = p;
    }
    memcpy(s->their_challenge, h->challenge.data, CHALLENGE_LEN);
    s->got_hello = true;
    send_auth(s);
}

static void on_auth(stream *s, const Hotstuff__V1__Auth *a) {
    if (!s->got_hello) return refuse(s, GRPC_STATUS_INVALID_ARGUMENT, "Auth before Hello");
    if (a->signature.len != HS_SIG_LEN)
        return refuse(s, GRPC_STATUS_INVALID_ARGUMENT, "Auth: signature of %zu bytes",
                      a->signature.len);
    uint8_t tr[TRANSCRIPT_LEN];
    transcript(s, s->dialed ? ROLE_ACCEPTOR : ROLE_DIALER, tr);
    hs_sig sig;
    memcpy(sig.b, a->signature.data, HS_SIG_LEN);
    if (!hs_verify(&s->peer->key, tr, sizeof tr, &sig))
        return refuse(s, GRPC_STATUS_UNAUTHENTICATED, "bad handshake signature from %s",
                      s->peer->name);
    on_authenticated(s);
}

static void on_message(stream *s, const Hotstuff__V1__Message *pb) {
    hs_transport *t = s->t;
    hs_msg m;
    char why[HS_MAP_REASON_MAX];
    hs_status st = hs_map_msg_from_pb(pb, &t->cfg.limits, &m, why);
    if (st == HS_ERR_NOMEM) return stream_end(s, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    if (st != HS_OK) return bad_message(s, "%s", why);
    pthread_mutex_lock(&t->mu);
    s->peer->received++;
    pthread_mutex_unlock(&t->mu);
    inbox_put(t, &s->peer->key, &m);
}

/* Each transaction of the frame goes to the handler on its own; the frame's size was
 * bounded by gRPC (max_message_bytes), which bounds the batch. */
static void on_transaction(stream *s, const Hotstuff__V1__Transaction *x) {
    char reason[256];
    for (size_t i = 0; i <= x->n_batch; i++) {
        const ProtobufCBinaryData *d = i == 0 ? &x->data : &x->batch[i - 1];
        if (i == 0 && d->len == 0) continue; /* a batch-only frame */
        int code = call_tx_handler(s->t, &s->peer->key, d->data, d->len, reason);
        if (code != GRPC_STATUS_OK)
            hs_log(HS_LOG_DEBUG, MODULE, "gossiped transaction from %s refused: %s",
                   s->peer->name, reason);
    }
}

/* The peer sent a message over max_message_bytes, which gRPC refused, ending the call with
 * RESOURCE_EXHAUSTED on its own: counted like any other undecodable message. gRPC does not
 * say why a call ended, so this is recognised from what was observed in gRPC 1.51 (and is
 * pinned by test_transport's "oversized" cases): on a call we accepted, a RECV_MESSAGE that
 * fails while the call is live (a cancel or a dropped connection shows up as
 * grpc_call_failed_before_recv_message instead); on a call we dialed, a failed RECV_MESSAGE
 * followed by a RESOURCE_EXHAUSTED status (when the peer refuses one of our messages, our
 * RECV_MESSAGE merely sees the end of the stream). */
static void oversized(stream *s) {
    size_t max = s->t->cfg.max_message_bytes;
    if (s->state == ST_OPEN) bad_message(s, "message over %zu bytes", max);
    else refuse(s, GRPC_STATUS_RESOURCE_EXHAUSTED, "message over %zu bytes", max);
}

/* Reads the received buffer as one contiguous frame. NULL if it is not a valid message. */
static Hotstuff__V1__Frame *unpack_frame(stream *s, void **outer) {
    grpc_byte_buffer_reader r;
    *outer = NULL;
    if (!grpc_byte_buffer_reader_init(&r, s->recv_bb)) return NULL;
    grpc_slice sl = grpc_byte_buffer_reader_readall(&r);
    grpc_byte_buffer_reader_destroy(&r);
    Hotstuff__V1__Frame *f = NULL;
    size_t len = GRPC_SLICE_LENGTH(sl);
    const uint8_t *p = GRPC_SLICE_START_PTR(sl);
    if (s->dialed) {
        Hotstuff__V1__ConnectResponse *m = hotstuff__v1__connect_response__unpack(NULL, len, p);
        if (m) *outer = m, f = m->frame;
    } else {
        Hotstuff__V1__ConnectRequest *m = hotstuff__v1__connect_request__unpack(NULL, len, p);
        if (m) *outer = m, f = m->frame;
    }
    grpc_slice_unref(sl);
    return f;
}

static void on_recv(stream *s, bool ok) {
    s->recv_armed = false;
    if (!s->recv_bb) {
        bool failed_before = grpc_call_failed_before_recv_message(s->call);
        if (!ok && !failed_before && !s->dialed && s->state != ST_ENDING) {
            /* On a call we accepted, the receive itself failed while the call was live: gRPC
             * refused the message, which means it was over max_message_bytes (a client that
             * cancels or whose connection drops shows as failed_before_recv_message). gRPC
             * has already ended the call with RESOURCE_EXHAUSTED. On calls we dialed a
             * failed receive also means a failed connection, so oversized messages are
             * recognised by the call's status instead (on_close). */
            oversized(s);
        } else if (!ok && !failed_before) {
            s->recv_failed = true; /* dialed: the status will tell why (on_close) */
        } else if (ok && !failed_before && !s->dialed && !s->closed && s->state != ST_ENDING) {
            /* The client half-closed: finish with OK once our queued frames are out. */
            stream_set_state(s, ST_ENDING);
            stream_detach(s);
            s->want_status = true;
            stream_pump(s);
        }
        return;
    }
    void *outer;
    Hotstuff__V1__Frame *f = unpack_frame(s, &outer);
    grpc_byte_buffer_destroy(s->recv_bb);
    s->recv_bb = NULL;
    if (s->state == ST_ENDING || s->closed) {
        /* nothing more is read from a stream we are ending */
    } else if (!f) {
        if (s->state == ST_OPEN) bad_message(s, "undecodable frame");
        else refuse(s, GRPC_STATUS_INVALID_ARGUMENT, "undecodable frame");
    } else if (s->state == ST_HANDSHAKE) {
        if (f->kind_case == HOTSTUFF__V1__FRAME__KIND_HELLO && f->hello) on_hello(s, f->hello);
        else if (f->kind_case == HOTSTUFF__V1__FRAME__KIND_AUTH && f->auth) on_auth(s, f->auth);
        else refuse(s, GRPC_STATUS_INVALID_ARGUMENT, "frame kind %d before the handshake",
                    (int)f->kind_case);
    } else if (f->kind_case == HOTSTUFF__V1__FRAME__KIND_MESSAGE) {
        on_message(s, f->message);
    } else if (f->kind_case == HOTSTUFF__V1__FRAME__KIND_TRANSACTION && f->transaction) {
        on_transaction(s, f->transaction);
    } else {
        bad_message(s, "frame kind %d after the handshake", (int)f->kind_case);
    }
    if (outer) protobuf_c_message_free_unpacked(outer, NULL);
    stream_arm_recv(s);
}

static void on_close(stream *s) {
    if (s->dialed && s->recv_failed && s->state != ST_ENDING &&
        s->status == GRPC_STATUS_RESOURCE_EXHAUSTED) {
        /* Our own gRPC failed a receive and ended the call: the peer's message was over the
         * limit. (When the peer ends the call with that status because it refused one of
         * ours, our receive just sees the end of the stream.) */
        oversized(s);
    }
    s->closed = true;
    if (s->dialed) {
        char *d = grpc_slice_to_c_string(s->details);
        /* Failed dials repeat with backoff while a peer is down: keep them out of info logs. */
        bool quiet = s->status == GRPC_STATUS_UNAVAILABLE && !s->peer->active &&
                     s->state == ST_HANDSHAKE;
        hs_log(quiet ? HS_LOG_DEBUG : HS_LOG_INFO, MODULE, "stream to %s ended: %s %s",
               s->peer->name, hs_grpc_code_name(s->status), d ? d : "");
        gpr_free(d);
    } else if (s->cancelled && s->peer && s->state == ST_OPEN) {
        hs_log(HS_LOG_INFO, MODULE, "stream from %s cancelled", s->peer->name);
    }
    /* Batches still pending (RECV, SEND) complete on their own now that the call is over. */
    stream_detach(s);
}

/* ------------------------------------------------------------------------------------------ */
/* Dialing (CQ thread).                                                                       */

static void schedule_dial(hs_transport *t, peer *p, bool failed) {
    if (!p->dial || t->phase != PH_RUNNING) return;
    uint64_t delay = jitter(p->backoff_ms);
    if (failed) {
        p->backoff_ms *= 2;
        if (p->backoff_ms > t->cfg.reconnect_max_ms) p->backoff_ms = t->cfg.reconnect_max_ms;
    }
    p->next_dial_ms = hs_mono_ms() + delay;
}

static void dial(hs_transport *t, peer *p) {
    grpc_channel *ch = hs_rpc_channel(p->address, &t->channel_args);
    grpc_call *call = grpc_channel_create_call(ch, NULL, GRPC_PROPAGATE_DEFAULTS, t->srv.cq,
                                               grpc_slice_from_static_string(METHOD_CONNECT),
                                               NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    stream *s = call ? stream_new(t, call, true) : NULL;
    if (!s) {
        if (call) grpc_call_unref(call);
        grpc_channel_destroy(ch);
        schedule_dial(t, p, true);
        return;
    }
    s->channel = ch;
    s->peer = p;
    snprintf(s->addr, sizeof s->addr, "%.63s", p->address);
    p->dialing = s;

    grpc_op ops[2];
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[0].data.recv_status_on_client.trailing_metadata = &s->trail_md;
    ops[0].data.recv_status_on_client.status = &s->status;
    ops[0].data.recv_status_on_client.status_details = &s->details;
    ops[0].data.recv_status_on_client.error_string = &s->error_string;
    if (!start_batch(s, ops, 1, &s->t_close)) {
        /* Without its close event the stream would never be freed: do it now. */
        p->dialing = NULL;
        s->closed = true;
        stream_free(s);
        schedule_dial(t, p, true);
        return;
    }
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[1].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[1].data.recv_initial_metadata.recv_initial_metadata = &s->init_md;
    start_batch(s, ops, 2, &s->t_md);
    stream_arm_recv(s);
    send_hello(s);
}

/* ------------------------------------------------------------------------------------------ */
/* Server side (CQ thread).                                                                   */

static void acceptor_arm(hs_transport *t, acceptor *a) {
    if (t->phase != PH_RUNNING) return;
    a->call = NULL;
    a->payload = NULL;
    grpc_metadata_array_init(&a->md);
    grpc_call_details_init(&a->details);
    grpc_call_error e;
    switch (a->kind) {
    case ACCEPT_CONNECT:
        e = grpc_server_request_registered_call(t->srv.server, t->rm[ACCEPT_CONNECT], &a->call, &a->deadline,
                                                &a->md, NULL, t->srv.cq, t->srv.cq, &a->t);
        break;
    case ACCEPT_SUBMIT:
        e = grpc_server_request_registered_call(t->srv.server, t->rm[ACCEPT_SUBMIT], &a->call, &a->deadline,
                                                &a->md, &a->payload, t->srv.cq, t->srv.cq, &a->t);
        break;
    case ACCEPT_HEALTH_CHECK:
    case ACCEPT_HEALTH_WATCH:
        e = grpc_server_request_registered_call(
            t->srv.server, t->rm[a->kind],
            &a->call, &a->deadline, &a->md, &a->payload, t->srv.cq, t->srv.cq, &a->t);
        break;
    case ACCEPT_REFLECTION_V1:
    case ACCEPT_REFLECTION_V1ALPHA:
        e = grpc_server_request_registered_call(
            t->srv.server, t->rm[a->kind],
            &a->call, &a->deadline, &a->md, NULL, t->srv.cq, t->srv.cq, &a->t);
        break;
    default:
        e = grpc_server_request_call(t->srv.server, &a->call, &a->details, &a->md, t->srv.cq, t->srv.cq,
                                     &a->t);
    }
    if (e == GRPC_CALL_OK) {
        a->armed = true;
    } else {
        hs_log(HS_LOG_ERROR, MODULE, "request_call(%d) failed: %d", (int)a->kind, (int)e);
        grpc_metadata_array_destroy(&a->md);
        grpc_call_details_destroy(&a->details);
    }
}

static void peer_addr(grpc_call *call, char *out, size_t cap) {
    char *p = grpc_call_get_peer(call);
    snprintf(out, cap, "%s", p ? p : "?");
    gpr_free(p);
}

static void accept_stream(hs_transport *t, grpc_call *call) {
    stream *s = stream_new(t, call, false);
    if (!s) {
        grpc_call_cancel_with_status(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory", NULL);
        grpc_call_unref(call);
        return;
    }
    t->n_handshaking_inbound++;
    peer_addr(call, s->addr, sizeof s->addr);
    grpc_op ops[2];
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[1].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    ops[1].data.recv_close_on_server.cancelled = &s->cancelled;
    if (!start_batch(s, ops, 2, &s->t_close)) {
        s->closed = true;
        stream_free(s);
        return;
    }
    if (t->phase != PH_RUNNING) /* matched just before the server shut down */
        return stream_end(s, GRPC_STATUS_UNAVAILABLE, "shutting down");
    if (t->n_handshaking_inbound > HANDSHAKING_SLACK + 2 * t->n_peers)
        return refuse(s, GRPC_STATUS_RESOURCE_EXHAUSTED, "too many streams in handshake");
    stream_arm_recv(s);
    send_hello(s);
}

/* Replies to a unary call with an optional message and a status, then forgets it. */
static void unary_reply(hs_transport *t, grpc_call *call, grpc_byte_buffer *reply,
                        grpc_status_code code, const char *msg) {
    unary *u = calloc(1, sizeof *u);
    if (!u) {
        if (reply) grpc_byte_buffer_destroy(reply);
        grpc_call_cancel_with_status(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory", NULL);
        grpc_call_unref(call);
        return;
    }
    u->t = (tag){TAG_UNARY_DONE, u};
    u->call = call;
    u->reply = reply;
    grpc_slice details = grpc_slice_from_copied_string(msg ? msg : "");
    grpc_op ops[4];
    memset(ops, 0, sizeof ops);
    size_t n = 0;
    ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
    if (reply) {
        ops[n].op = GRPC_OP_SEND_MESSAGE;
        ops[n++].data.send_message.send_message = reply;
    }
    ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    ops[n].data.send_status_from_server.status = code;
    ops[n++].data.send_status_from_server.status_details = &details;
    ops[n].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    ops[n++].data.recv_close_on_server.cancelled = &u->cancelled;
    grpc_call_error e = grpc_call_start_batch(call, ops, n, &u->t, NULL);
    grpc_slice_unref(details); /* not retained past start_batch */
    if (e != GRPC_CALL_OK) {
        hs_log(HS_LOG_ERROR, MODULE, "unary reply failed: %d", (int)e);
        grpc_call_cancel(call, NULL);
        if (reply) grpc_byte_buffer_destroy(reply);
        grpc_call_unref(call);
        free(u);
        return;
    }
    t->n_unary++;
}

static void on_unary_done(hs_transport *t, unary *u) {
    if (u->reply) grpc_byte_buffer_destroy(u->reply);
    grpc_call_unref(u->call);
    free(u);
    t->n_unary--;
}

static void handle_submit(hs_transport *t, grpc_call *call, grpc_byte_buffer *payload) {
    Hotstuff__V1__SubmitTransactionRequest *req = NULL;
    if (payload) {
        grpc_byte_buffer_reader r;
        if (grpc_byte_buffer_reader_init(&r, payload)) {
            grpc_slice sl = grpc_byte_buffer_reader_readall(&r);
            grpc_byte_buffer_reader_destroy(&r);
            req = hotstuff__v1__submit_transaction_request__unpack(NULL, GRPC_SLICE_LENGTH(sl),
                                                                   GRPC_SLICE_START_PTR(sl));
            grpc_slice_unref(sl);
        }
        grpc_byte_buffer_destroy(payload);
    }
    if (!req) return unary_reply(t, call, NULL, GRPC_STATUS_INVALID_ARGUMENT, "malformed request");
    if (req->transaction.len == 0) {
        hotstuff__v1__submit_transaction_request__free_unpacked(req, NULL);
        return unary_reply(t, call, NULL, GRPC_STATUS_INVALID_ARGUMENT, "empty transaction");
    }
    char reason[256];
    int code = call_tx_handler(t, NULL, req->transaction.data, req->transaction.len, reason);
    grpc_byte_buffer *reply = NULL;
    if (code == GRPC_STATUS_OK) {
        hs_hash h;
        hs_sha256(req->transaction.data, req->transaction.len, &h);
        Hotstuff__V1__SubmitTransactionResponse resp =
            HOTSTUFF__V1__SUBMIT_TRANSACTION_RESPONSE__INIT;
        resp.transaction_hash.data = h.b;
        resp.transaction_hash.len = HS_HASH_LEN;
        reply = hs_pb_pack(&resp.base);
        reason[0] = '\0';
    }
    hotstuff__v1__submit_transaction_request__free_unpacked(req, NULL);
    unary_reply(t, call, reply, (grpc_status_code)code, reason);
}

/* ---- health and reflection (see OPERATOR SERVICES) ---- */

static void handle_health_check(hs_transport *t, grpc_call *call, grpc_byte_buffer *payload) {
    grpc_byte_buffer *reply = NULL;
    const char *details = NULL;
    grpc_status_code code = hs_health_check_reply(t->health, payload, &reply, &details);
    if (payload) grpc_byte_buffer_destroy(payload);
    unary_reply(t, call, reply, code, details);
}

static void svc_free(hs_transport *t, svc *v) {
    if (v->recv) grpc_byte_buffer_destroy(v->recv);
    if (v->send) grpc_byte_buffer_destroy(v->send);
    hs_reflection_stream_free(v->rs);
    grpc_call_unref(v->call);
    free(v);
    t->n_unary--;
}

static bool svc_batch(svc *v, const grpc_op *ops, size_t n, tag *tg) {
    if (grpc_call_start_batch(v->call, ops, n, tg, NULL) != GRPC_CALL_OK) return false;
    v->pending++;
    return true;
}

/* Ends the call with a status (once). On a failed start the call is cancelled instead. */
static void svc_finish(svc *v, grpc_status_code code, const char *msg) {
    if (v->status_sent) return;
    v->status_sent = true;
    grpc_slice details = grpc_slice_from_copied_string(msg);
    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    op.data.send_status_from_server.status = code;
    op.data.send_status_from_server.status_details = &details;
    if (!svc_batch(v, &op, 1, &v->t_status)) grpc_call_cancel(v->call, NULL);
    grpc_slice_unref(details);
}

static void svc_send(svc *v, grpc_byte_buffer *bb) {
    v->send = bb;
    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_SEND_MESSAGE;
    op.data.send_message.send_message = bb;
    if (!svc_batch(v, &op, 1, &v->t_send)) grpc_call_cancel(v->call, NULL);
}

static void svc_arm_recv(svc *v) {
    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_RECV_MESSAGE;
    op.data.recv_message.recv_message = &v->recv;
    if (!svc_batch(v, &op, 1, &v->t_recv)) grpc_call_cancel(v->call, NULL);
}

/* A reflection stream (rs set) or a health Watch (request in payload). */
static void accept_svc(hs_transport *t, grpc_call *call, bool reflection,
                       grpc_byte_buffer *payload) {
    svc *v = calloc(1, sizeof *v);
    if (v && reflection && !(v->rs = hs_reflection_stream_new(t->reflection))) {
        free(v);
        v = NULL;
    }
    if (!v) {
        if (payload) grpc_byte_buffer_destroy(payload);
        grpc_call_cancel_with_status(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory", NULL);
        grpc_call_unref(call);
        return;
    }
    t->n_unary++;
    v->call = call;
    v->t_close = (tag){TAG_V_CLOSE, v};
    v->t_recv = (tag){TAG_V_RECV, v};
    v->t_send = (tag){TAG_V_SEND, v};
    v->t_status = (tag){TAG_V_STATUS, v};
    grpc_op ops[2];
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[1].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    ops[1].data.recv_close_on_server.cancelled = &v->cancelled;
    if (!svc_batch(v, ops, 2, &v->t_close)) {
        if (payload) grpc_byte_buffer_destroy(payload);
        grpc_call_cancel(call, NULL);
        svc_free(t, v);
        return;
    }
    if (t->phase != PH_RUNNING) {
        if (payload) grpc_byte_buffer_destroy(payload);
        return svc_finish(v, GRPC_STATUS_UNAVAILABLE, "shutting down");
    }
    if (reflection) return svc_arm_recv(v);
    char name[HS_HEALTH_MAX_NAME + 1];
    bool parsed = payload && hs_health_parse_request(payload, name);
    if (payload) grpc_byte_buffer_destroy(payload);
    if (!parsed) return svc_finish(v, GRPC_STATUS_INVALID_ARGUMENT, "malformed request");
    int status;
    if (!hs_health_get(t->health, name, &status)) status = HS_HEALTH_SERVICE_UNKNOWN;
    grpc_byte_buffer *bb = hs_health_response(status);
    if (!bb) return svc_finish(v, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    svc_send(v, bb); /* then nothing until the client leaves or stop cancels the call */
}

static void on_svc_event(hs_transport *t, tag *tg, bool ok) {
    svc *v = tg->owner;
    v->pending--;
    switch (tg->kind) {
    case TAG_V_RECV: {
        grpc_byte_buffer *req = v->recv;
        v->recv = NULL;
        if (!ok) break; /* the call is gone */
        if (!req) { /* half-close: every request has had its answer */
            svc_finish(v, GRPC_STATUS_OK, "");
            break;
        }
        grpc_byte_buffer *ans = t->phase == PH_RUNNING
                                    ? hs_reflection_answer(t->reflection, v->rs, req)
                                    : NULL;
        grpc_byte_buffer_destroy(req);
        if (t->phase != PH_RUNNING) svc_finish(v, GRPC_STATUS_UNAVAILABLE, "shutting down");
        else if (!ans) svc_finish(v, GRPC_STATUS_INVALID_ARGUMENT, "malformed request");
        else svc_send(v, ans);
        break;
    }
    case TAG_V_SEND:
        grpc_byte_buffer_destroy(v->send);
        v->send = NULL;
        if (ok && v->rs) svc_arm_recv(v); /* one response per request, in order */
        break;
    default: break; /* TAG_V_CLOSE, TAG_V_STATUS */
    }
    if (v->pending == 0) svc_free(t, v);
}

static void on_accept(hs_transport *t, acceptor *a, bool ok) {
    a->armed = false;
    grpc_call *call = a->call;
    grpc_byte_buffer *payload = a->payload;
    char method[96] = "";
    if (a->kind == ACCEPT_GENERIC && ok) {
        char *m = grpc_slice_to_c_string(a->details.method);
        snprintf(method, sizeof method, "%s", m ? m : "?");
        gpr_free(m);
    }
    grpc_metadata_array_destroy(&a->md);
    grpc_call_details_destroy(&a->details);
    if (!ok) { /* the server is shutting down: the request is void, do not re-arm */
        if (payload) grpc_byte_buffer_destroy(payload);
        return;
    }
    acceptor_arm(t, a); /* first, so the next call is never left waiting */
    switch (a->kind) {
    case ACCEPT_CONNECT: accept_stream(t, call); break;
    case ACCEPT_SUBMIT: handle_submit(t, call, payload); break;
    case ACCEPT_HEALTH_CHECK: handle_health_check(t, call, payload); break;
    case ACCEPT_HEALTH_WATCH: accept_svc(t, call, false, payload); break;
    case ACCEPT_REFLECTION_V1:
    case ACCEPT_REFLECTION_V1ALPHA: accept_svc(t, call, true, NULL); break;
    default: {
        char msg[160];
        snprintf(msg, sizeof msg, "method %s not implemented", method);
        hs_log(HS_LOG_INFO, MODULE, "call to unknown method %s", method);
        pthread_mutex_lock(&t->mu);
        t->stats.unimplemented_calls++;
        pthread_mutex_unlock(&t->mu);
        unary_reply(t, call, NULL, GRPC_STATUS_UNIMPLEMENTED, msg);
    }
    }
}

/* ------------------------------------------------------------------------------------------ */
/* The CQ thread.                                                                             */

static void on_kick(hs_transport *t) {
    hs_rpc_kick_taken(&t->kick); /* before looking at the work, so later work kicks again */
    if (atomic_exchange(&t->resume_recv, false)) {
        for (stream *s = t->streams; s; s = s->next)
            if (s->recv_paused) stream_arm_recv(s);
    }
    pthread_mutex_lock(&t->mu);
    gossip_flush_locked(t);
    pthread_mutex_unlock(&t->mu);
    for (size_t i = 0; i < t->n_peers; i++) {
        stream *s = t->peers[i].active;
        if (s && !s->send_in_flight) stream_pump(s);
    }
}

static void begin_stop(hs_transport *t) {
    t->phase = PH_DRAINING;
    hs_health_shutdown(t->health); /* a Check during the grace period says NOT_SERVING */
    t->grace_deadline_ms = hs_mono_ms() + STOP_GRACE_MS;
    grpc_server_shutdown_and_notify(t->srv.server, t->srv.cq, &t->shutdown_tag);
    /* Streams still in handshake carry nothing worth waiting for. */
    for (stream *s = t->streams; s; s = s->next)
        if (s->state == ST_HANDSHAKE) stream_end(s, GRPC_STATUS_UNAVAILABLE, "shutting down");
}

static bool outboxes_flushed(hs_transport *t) {
    for (size_t i = 0; i < t->n_peers; i++) {
        stream *s = t->peers[i].active;
        if (!s) continue;
        pthread_mutex_lock(&t->mu);
        uint32_t n = t->peers[i].outbox.n;
        pthread_mutex_unlock(&t->mu);
        if (n || s->send_in_flight) return false;
    }
    return true;
}

static void cancel_everything(hs_transport *t) {
    t->phase = PH_CANCELLING;
    grpc_server_cancel_all_calls(t->srv.server);
    for (stream *s = t->streams; s; s = s->next)
        if (s->dialed) stream_end(s, GRPC_STATUS_UNAVAILABLE, "shutting down");
}

/* The last step once nothing is outstanding: no calls, no requests, the server's shutdown
 * notified and no kick queued. */
static void maybe_finish(hs_transport *t) {
    if (t->phase != PH_CANCELLING || t->streams || t->n_unary || !t->shutdown_done) return;
    for (int i = 0; i < ACCEPT_COUNT; i++)
        if (t->acc[i].armed) return;
    if (!hs_rpc_kick_close(&t->kick)) return; /* its event is on the way */
    t->phase = PH_CQ_SHUTDOWN;
    grpc_server_destroy(t->srv.server);
    t->srv.server = NULL;
    grpc_completion_queue_shutdown(t->srv.cq);
}

/* Timers: dials, handshake deadlines, the stop sequence. Returns the next due time. */
static uint64_t run_timers(hs_transport *t) {
    uint64_t now = hs_mono_ms(), next = now + MAX_WAIT_MS;
    if (t->phase == PH_RUNNING && atomic_load(&t->stop_requested)) begin_stop(t);
    if (t->phase == PH_DRAINING) {
        if (now >= t->grace_deadline_ms || outboxes_flushed(t)) cancel_everything(t);
        else if (t->grace_deadline_ms < next) next = t->grace_deadline_ms;
    }
    if (t->phase == PH_RUNNING) {
        for (size_t i = 0; i < t->n_peers; i++) {
            peer *p = &t->peers[i];
            if (!p->dial || p->active || p->dialing) continue;
            if (now >= p->next_dial_ms) dial(t, p);
            else if (p->next_dial_ms < next) next = p->next_dial_ms;
        }
    }
    for (stream *s = t->streams, *nx; s; s = nx) {
        nx = s->next;
        if (s->state != ST_HANDSHAKE) continue;
        if (now >= s->handshake_deadline_ms) {
            if (s->dialed) stream_end(s, GRPC_STATUS_DEADLINE_EXCEEDED, "handshake timed out");
            else refuse(s, GRPC_STATUS_DEADLINE_EXCEEDED, "handshake timed out");
        } else if (s->handshake_deadline_ms < next) {
            next = s->handshake_deadline_ms;
        }
    }
    maybe_finish(t);
    return next;
}

static void dispatch(hs_transport *t, tag *tg, bool ok) {
    switch (tg->kind) {
    case TAG_KICK: on_kick(t); return;
    case TAG_SHUTDOWN: t->shutdown_done = true; return;
    case TAG_ACCEPT: on_accept(t, tg->owner, ok); return;
    case TAG_UNARY_DONE: on_unary_done(t, tg->owner); return;
    case TAG_V_CLOSE:
    case TAG_V_RECV:
    case TAG_V_SEND:
    case TAG_V_STATUS: on_svc_event(t, tg, ok); return;
    default: break;
    }
    stream *s = tg->owner;
    s->pending--;
    switch (tg->kind) {
    case TAG_S_CLOSE: on_close(s); break;
    case TAG_S_RECV: on_recv(s, ok); break;
    case TAG_S_SEND: on_send(s, ok); break;
    case TAG_S_MD:
    case TAG_S_STATUS: break;
    default: break;
    }
    stream_maybe_free(s);
}

static void *cq_main(void *arg) {
    hs_transport *t = arg;
    for (;;) {
        uint64_t next = t->phase == PH_CQ_SHUTDOWN ? hs_mono_ms() + MAX_WAIT_MS : run_timers(t);
        uint64_t now = hs_mono_ms();
        grpc_event ev = grpc_completion_queue_next(t->srv.cq, hs_deadline_in_ms(next > now ? next - now : 0),
                                                   NULL);
        if (ev.type == GRPC_QUEUE_SHUTDOWN) break;
        if (ev.type == GRPC_QUEUE_TIMEOUT) continue;
        dispatch(t, ev.tag, ev.success != 0);
        if (t->phase == PH_CANCELLING) maybe_finish(t);
    }
    return NULL;
}

/* ------------------------------------------------------------------------------------------ */
/* Start, stop, stats.                                                                        */

void hs_transport_config_defaults(hs_transport_config *c) {
    c->max_message_bytes = 16u << 20;
    c->outbox_capacity = 1024;
    c->inbox_capacity = 8192;
    c->reconnect_initial_ms = 100;
    c->reconnect_max_ms = 10000;
    c->keepalive_time_ms = 10000;
    c->handshake_timeout_ms = 5000;
    c->limits = hs_limits_default();
}

static grpc_arg int_arg(const char *key, int v) {
    grpc_arg a;
    a.type = GRPC_ARG_INTEGER;
    a.key = (char *)key;
    a.value.integer = v;
    return a;
}

static int clamp_int(uint64_t v) {
    return v > INT_MAX ? INT_MAX : (int)v;
}

/* Keepalive both ways: each side pings every keepalive_time_ms even on idle streams, and
 * accepts the other's pings as often as every keepalive_time_ms / 2, so neither ever sends
 * GOAWAY "too_many_pings" to the other (grpc-core.md pitfall 9). */
static void build_args(hs_transport *t) {
    const hs_transport_config *c = &t->cfg;
    int ka = clamp_int(c->keepalive_time_ms);
    int ka_timeout = clamp_int(c->keepalive_time_ms < 20000 ? c->keepalive_time_ms : 20000);
    int msg = clamp_int(c->max_message_bytes);
    size_t n = 0;
    grpc_arg *s = t->server_arg_v;
    s[n++] = int_arg(GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, msg);
    s[n++] = int_arg(GRPC_ARG_MAX_SEND_MESSAGE_LENGTH, msg);
    s[n++] = int_arg(GRPC_ARG_KEEPALIVE_TIME_MS, ka);
    s[n++] = int_arg(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, ka_timeout);
    s[n++] = int_arg(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
    s[n++] = int_arg(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
    s[n++] = int_arg(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, ka / 2);
    s[n++] = int_arg(GRPC_ARG_MAX_CONCURRENT_STREAMS, MAX_CONCURRENT_STREAMS);
    t->server_args.num_args = n;
    t->server_args.args = s;

    n = 0;
    grpc_arg *ch = t->channel_arg_v;
    ch[n++] = int_arg(GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, msg);
    ch[n++] = int_arg(GRPC_ARG_MAX_SEND_MESSAGE_LENGTH, msg);
    ch[n++] = int_arg(GRPC_ARG_KEEPALIVE_TIME_MS, ka);
    ch[n++] = int_arg(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, ka_timeout);
    ch[n++] = int_arg(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
    ch[n++] = int_arg(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
    ch[n++] = int_arg(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, ka / 2);
    ch[n++] = int_arg(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    ch[n++] = int_arg(GRPC_ARG_ENABLE_RETRIES, 0);
    ch[n++] = int_arg(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, clamp_int(c->reconnect_initial_ms));
    ch[n++] = int_arg(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, clamp_int(c->reconnect_initial_ms));
    ch[n++] = int_arg(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, clamp_int(c->reconnect_max_ms));
    t->channel_args.num_args = n;
    t->channel_args.args = ch;
}

static hs_status check_config(const hs_transport_config *c, char *err, size_t errlen) {
#define BAD(...) return snprintf(err, errlen, __VA_ARGS__), HS_ERR_INVALID
    if (c->n_peers > MAX_PEERS) BAD("%zu peers, at most %d", c->n_peers, MAX_PEERS);
    if (c->n_peers && !c->peers) BAD("peers is NULL");
    if (c->max_message_bytes < 1024 || c->max_message_bytes > INT_MAX)
        BAD("max_message_bytes %zu is not in [1024, %d]", c->max_message_bytes, INT_MAX);
    if (c->outbox_capacity < 1 || c->outbox_capacity > (1u << 24))
        BAD("outbox_capacity %u is not in [1, 2^24]", c->outbox_capacity);
    if (c->inbox_capacity < 4 || c->inbox_capacity > (1u << 24))
        BAD("inbox_capacity %u is not in [4, 2^24]", c->inbox_capacity);
    if (c->reconnect_initial_ms < 1 || c->reconnect_max_ms < c->reconnect_initial_ms ||
        c->reconnect_max_ms > 3600000)
        BAD("reconnect_initial_ms %llu / reconnect_max_ms %llu: need 1 <= initial <= max <= 1h",
            (unsigned long long)c->reconnect_initial_ms, (unsigned long long)c->reconnect_max_ms);
    if (c->keepalive_time_ms < 1000 || c->keepalive_time_ms > 86400000)
        BAD("keepalive_time_ms %llu is not in [1000, 1 day]",
            (unsigned long long)c->keepalive_time_ms);
    if (c->handshake_timeout_ms < 10 || c->handshake_timeout_ms > 600000)
        BAD("handshake_timeout_ms %llu is not in [10, 600000]",
            (unsigned long long)c->handshake_timeout_ms);
    if (!memchr(c->listen_address, '\0', sizeof c->listen_address) || !c->listen_address[0])
        BAD("listen_address is empty or not terminated");
    for (size_t i = 0; i < c->n_peers; i++) {
        if (!memchr(c->peers[i].address, '\0', sizeof c->peers[i].address))
            BAD("peer %zu: address not terminated", i);
        if (key_cmp(&c->peers[i].key, &c->me.public_key) == 0)
            BAD("peer %zu has our own key", i);
    }
    return HS_OK;
#undef BAD
}

/* Frees what start built, in reverse; safe on a partly built transport. CQ thread gone. */
static void transport_free(hs_transport *t) {
    for (size_t i = 0; i < t->n_peers; i++) {
        qent e;
        while (evq_pop(&t->peers[i].outbox, &e)) blob_unref(e.item);
        free(t->peers[i].outbox.e);
    }
    free(t->peers);
    free(t->gossip.buf);
    free(t->gossip.lens);
    qent e;
    while (evq_pop(&t->in.q, &e)) inbox_item_free(e.item);
    free(t->in.q.e);
    pthread_mutex_destroy(&t->mu);
    if (t->kick_ready) hs_rpc_kick_destroy(&t->kick);
    pthread_mutex_destroy(&t->in.mu);
    pthread_cond_destroy(&t->in.cv);
    hs_health_free(t->health);
    hs_reflection_free(t->reflection);
    free(t);
}

/* Undoes a start that failed after the server started, before any CQ thread exists: the
 * shutdown tag and every armed request come back, then the server and queue go. */
static void grpc_teardown_unstarted(hs_transport *t) {
    if (t->kick_ready) hs_rpc_kick_close(&t->kick); /* nothing queued: no thread ever kicked */
    grpc_server_shutdown_and_notify(t->srv.server, t->srv.cq, &t->shutdown_tag);
    grpc_server_cancel_all_calls(t->srv.server);
    bool done = false;
    for (;;) {
        bool armed = false;
        for (int i = 0; i < ACCEPT_COUNT; i++) armed = armed || t->acc[i].armed;
        if (done && !armed) break;
        grpc_event ev = grpc_completion_queue_next(t->srv.cq, hs_deadline_in_ms(1000), NULL);
        if (ev.type != GRPC_OP_COMPLETE) continue;
        if (ev.tag == &t->shutdown_tag) {
            done = true;
            continue;
        }
        acceptor *a = ((tag *)ev.tag)->owner;
        a->armed = false;
        grpc_metadata_array_destroy(&a->md);
        grpc_call_details_destroy(&a->details);
        if (a->payload) grpc_byte_buffer_destroy(a->payload);
        if (ev.success && a->call) grpc_call_unref(a->call);
    }
    hs_rpc_server_close(&t->srv);
}

hs_status hs_transport_start(const hs_transport_config *cfg, hs_transport **out, char *err,
                             size_t errlen) {
    *out = NULL;
    if (errlen) err[0] = '\0';
    hs_status st = check_config(cfg, err, errlen);
    if (st != HS_OK) return st;
    if (hs_crypto_init() != HS_OK) {
        snprintf(err, errlen, "libsodium failed to initialise");
        return HS_ERR_STATE;
    }
    hs_transport *t = calloc(1, sizeof *t);
    if (!t) return HS_ERR_NOMEM;
    t->cfg = *cfg;
    t->cfg.peers = NULL;
    t->cfg.n_peers = 0;
    pthread_mutex_init(&t->mu, NULL);
    pthread_mutex_init(&t->in.mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&t->in.cv, &ca);
    pthread_condattr_destroy(&ca);
    t->in.high = cfg->inbox_capacity - cfg->inbox_capacity / 4;
    t->in.low = cfg->inbox_capacity / 2;
    key_name(&cfg->me.public_key, t->me_name);
    t->kick_tag = (tag){TAG_KICK, t};
    t->shutdown_tag = (tag){TAG_SHUTDOWN, t};

    static const char *const served[] = {SERVICE_REPLICA, HS_HEALTH_SERVICE,
                                         HS_REFLECTION_V1_SERVICE, HS_REFLECTION_V1ALPHA_SERVICE};
    t->reflection = hs_reflection_new(hs_descriptor_set, hs_descriptor_set_len, served,
                                      sizeof served / sizeof served[0]);
    t->health = hs_health_new();
    t->peers = calloc(cfg->n_peers ? cfg->n_peers : 1, sizeof *t->peers);
    bool ok = t->peers && t->reflection && t->health && evq_init(&t->in.q, cfg->inbox_capacity) &&
              hs_health_set(t->health, "", HS_HEALTH_SERVING) &&
              hs_health_set(t->health, SERVICE_REPLICA, HS_HEALTH_SERVING);
    for (size_t i = 0; ok && i < cfg->n_peers; i++) {
        peer *p = &t->peers[i];
        p->key = cfg->peers[i].key;
        memcpy(p->address, cfg->peers[i].address, HS_TRANSPORT_MAX_ADDR);
        p->dial = p->address[0] && key_cmp(&cfg->me.public_key, &p->key) < 0;
        p->backoff_ms = cfg->reconnect_initial_ms;
        key_name(&p->key, p->name);
        t->n_peers = i + 1;
        ok = evq_init(&p->outbox, cfg->outbox_capacity);
    }
    if (!ok) {
        transport_free(t);
        return HS_ERR_NOMEM;
    }
    qsort(t->peers, t->n_peers, sizeof *t->peers, peer_cmp);
    for (size_t i = 1; i < t->n_peers; i++) {
        if (key_cmp(&t->peers[i - 1].key, &t->peers[i].key) == 0) {
            snprintf(err, errlen, "peer %s is listed twice", t->peers[i].name);
            transport_free(t);
            return HS_ERR_INVALID;
        }
    }
    build_args(t);

    st = hs_rpc_server_open(&t->srv, t->cfg.listen_address, &t->server_args, methods,
                            ACCEPT_GENERIC, t->rm, "replica transport", err, errlen);
    if (st != HS_OK) {
        transport_free(t);
        return st;
    }
    t->kick_ready = hs_rpc_kick_init(&t->kick, t->srv.cq, &t->kick_tag);
    for (int i = 0; i < ACCEPT_COUNT; i++) {
        t->acc[i].kind = (enum accept_kind)i;
        t->acc[i].t = (tag){TAG_ACCEPT, &t->acc[i]};
        acceptor_arm(t, &t->acc[i]);
    }
    bool all_armed = true;
    for (int i = 0; i < ACCEPT_COUNT; i++) all_armed = all_armed && t->acc[i].armed;
    if (!t->kick_ready || !all_armed || pthread_create(&t->thread, NULL, cq_main, t) != 0) {
        snprintf(err, errlen, "cannot start the transport thread");
        grpc_teardown_unstarted(t);
        transport_free(t);
        return HS_ERR_STATE;
    }
    hs_log(HS_LOG_INFO, MODULE, "%s listening on port %d, %zu peers", t->me_name, t->srv.port,
           t->n_peers);
    *out = t;
    return HS_OK;
}

int hs_transport_port(const hs_transport *t) {
    return t->srv.port;
}

void hs_transport_stop(hs_transport *t) {
    if (!t) return;
    pthread_mutex_lock(&t->in.mu);
    t->in.closed = true;
    pthread_cond_broadcast(&t->in.cv);
    while (t->in.users > 0) pthread_cond_wait(&t->in.cv, &t->in.mu);
    pthread_mutex_unlock(&t->in.mu);
    atomic_store(&t->stop_requested, true);
    kick(t);
    pthread_join(t->thread, NULL);
    /* The thread destroyed the server and drained the queue (maybe_finish, cq_main). */
    grpc_completion_queue_destroy(t->srv.cq);
    transport_free(t);
    grpc_shutdown(); /* pairs hs_rpc_server_open's grpc_init */
}

void hs_transport_get_stats(hs_transport *t, hs_transport_stats *out) {
    pthread_mutex_lock(&t->mu);
    *out = t->stats;
    pthread_mutex_unlock(&t->mu);
}

hs_health *hs_transport_health(hs_transport *t) {
    return t->health;
}

size_t hs_transport_get_peer_stats(hs_transport *t, hs_transport_peer_stats *out, size_t cap) {
    pthread_mutex_lock(&t->mu);
    for (size_t i = 0; i < t->n_peers && i < cap; i++) {
        const peer *p = &t->peers[i];
        out[i].key = p->key;
        out[i].connected = p->connected;
        out[i].sent = p->sent;
        out[i].received = p->received;
        out[i].dropped_outbox_full = p->dropped;
        out[i].reconnects = p->reconnects;
    }
    pthread_mutex_unlock(&t->mu);
    return t->n_peers;
}
